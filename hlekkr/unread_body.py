"""A refusal must not poison a keep-alive connection.

Views refuse some requests without reading the whole body: a direct upload whose Content-Length is over the
limit (413), a multipart form whose part headers are too long (400 `malformed_request`: Django stops parsing),
a request refused before its view runs (401, 403, 429). The unread rest of the body is still on the socket.
gunicorn drains at most 64 KiB of it after the response and otherwise closes the connection — after a response
that announced `Connection: keep-alive`, so the client's next request on that connection finds it closed
without an answer (issue 14: 2 of 4 runs of a hostile upload sequence).

`UnreadBodyGuard` wraps the WSGI application: after the application has answered, it reads and discards what
is left of the body, up to `HLEKKR_UNREAD_BODY_DRAIN_BYTES` (8 MiB) and `HLEKKR_UNREAD_BODY_DRAIN_SECONDS`
(5 s). When more is left than that, the response says `Connection: close` instead: under gunicorn through the
request object its `pre_request` hook (`remember_gunicorn_request`, set in hlekkr/gunicorn.conf.py) hands over,
since gunicorn drops hop-by-hop headers an application sets. Either way the client is never left guessing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

CHUNK = 64 * 1024
DEFAULT_DRAIN_BYTES = 8 * 1024 * 1024
DEFAULT_DRAIN_SECONDS = 5.0

_gunicorn = threading.local()


def remember_gunicorn_request(worker: Any, req: Any) -> None:
    """gunicorn `pre_request` hook: the request about to be handled in this thread, so the guard can make
    gunicorn answer `Connection: close` (gunicorn ignores a Connection header set by the application)."""
    _gunicorn.request = req


def _force_close(environ: dict[str, Any]) -> bool:
    request = getattr(_gunicorn, "request", None)
    if request is not None and hasattr(request, "force_close"):
        request.force_close()
        return True
    environ["hlekkr.connection_must_close"] = True  # other servers: the fact, for a server adapter to act on
    return False


class _CountingInput:
    """wsgi.input that counts what the application read, so the guard knows what is left."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size) if size is not None and size >= 0 else self._stream.read()
        self.consumed += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size) if size is not None and size >= 0 else self._stream.readline()
        self.consumed += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = self._stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def drain(stream: _CountingInput, length: int, *, max_bytes: int, max_seconds: float) -> bool:
    """Read and discard the rest of a body of `length` bytes; True when all of it was read within the bounds."""
    remaining = length - stream.consumed
    if remaining <= 0:
        return True
    if remaining > max_bytes:
        return False  # known up front: do not spend time reading what will not be finished
    deadline = time.monotonic() + max_seconds
    while remaining > 0:
        if time.monotonic() > deadline:
            return False
        try:
            data = stream.read(min(CHUNK, remaining))
        except OSError:
            return False
        if not data:
            return False  # the client sent less than it declared
        remaining -= len(data)
    return True


class UnreadBodyGuard:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.max_bytes = int(settings.HLEKKR_UNREAD_BODY_DRAIN_BYTES)
        self.max_seconds = float(settings.HLEKKR_UNREAD_BODY_DRAIN_SECONDS)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = _content_length(environ)
        if length == 0:
            return self.app(environ, start_response)
        stream = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = stream
        response = self.app(environ, start_response)
        # Django has built the whole response (streaming bodies read their input before they start); the
        # status line is not written until the server iterates, so closing can still be announced.
        if not drain(stream, length, max_bytes=self.max_bytes, max_seconds=self.max_seconds):
            _force_close(environ)
        return response
