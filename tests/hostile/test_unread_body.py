"""hlekkr.unread_body without a server: what the guard drains, and when it asks for the connection to close."""

from __future__ import annotations

import io
from typing import Any

from hlekkr import unread_body
from hlekkr.unread_body import UnreadBodyGuard


class FakeGunicornRequest:
    closed = False

    def force_close(self) -> None:
        self.closed = True


def refusing_app(read: int):
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(read)
        start_response("413 Payload Too Large", [("Content-Type", "application/json")])
        return [b"{}"]

    return app


def call(guard: UnreadBodyGuard, body: bytes, declared: int) -> tuple[dict[str, Any], io.BytesIO]:
    stream = io.BytesIO(body)
    environ = {"CONTENT_LENGTH": str(declared), "wsgi.input": stream}
    guard(environ, lambda status, headers: None)
    return environ, stream


def test_the_unread_rest_of_a_body_is_drained(monkeypatch: Any) -> None:
    request = FakeGunicornRequest()
    unread_body.remember_gunicorn_request(None, request)
    _, stream = call(UnreadBodyGuard(refusing_app(10)), b"x" * 500_000, 500_000)
    assert stream.tell() == 500_000 and not request.closed


def test_more_than_the_drain_bound_closes_the_connection(settings: Any) -> None:
    settings.HLEKKR_UNREAD_BODY_DRAIN_BYTES = 1000
    request = FakeGunicornRequest()
    unread_body.remember_gunicorn_request(None, request)
    _, stream = call(UnreadBodyGuard(refusing_app(10)), b"x" * 5000, 5000)
    assert request.closed
    assert stream.tell() == 10, "nothing is read when the rest is known to be over the bound"


def test_a_body_shorter_than_declared_closes_the_connection() -> None:
    request = FakeGunicornRequest()
    unread_body.remember_gunicorn_request(None, request)
    call(UnreadBodyGuard(refusing_app(0)), b"x" * 100, 1 << 20)
    assert request.closed


def test_without_gunicorn_the_environ_records_the_need_to_close(monkeypatch: Any, settings: Any) -> None:
    monkeypatch.setattr(unread_body._gunicorn, "request", None, raising=False)
    settings.HLEKKR_UNREAD_BODY_DRAIN_BYTES = 10
    environ, _ = call(UnreadBodyGuard(refusing_app(0)), b"x" * 100, 100)
    assert environ["hlekkr.connection_must_close"] is True


def test_a_fully_read_body_is_left_alone() -> None:
    request = FakeGunicornRequest()
    unread_body.remember_gunicorn_request(None, request)
    _, stream = call(UnreadBodyGuard(refusing_app(-1)), b"x" * 100, 100)
    assert stream.tell() == 100 and not request.closed
