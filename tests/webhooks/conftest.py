"""A webhook receiver on loopback (http.server in a thread) and a fake resolver: nothing leaves this machine."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    # Each entry answers one request: (status, headers); the last one repeats.
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=lambda: [(200, {})])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def reply(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.replies = [(status, headers or {})]


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = True
    state = Receiver(port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                status, headers = state.replies[0] if len(state.replies) == 1 else state.replies.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            payload = b"ok" if status < 300 else b"receiver says no"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], list[str]]:
    """fake_dns({"name": ["ip", ...]}) makes socket.getaddrinfo answer from the table (and refuse anything else,
    so no test can resolve a real host). Returns the list of names looked up."""
    looked_up: list[str] = []

    def install(table: dict[str, list[str]]) -> list[str]:
        def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            try:
                ipaddress.ip_address(host)
                answers = [host]  # socket.create_connection to a literal address asks too; answer it as-is
            except ValueError:
                looked_up.append(host)
                answers = table.get(host, [])
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "not in the test's table")
            out = []
            for ip in answers:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                sockaddr = (ip, int(port or 0), 0, 0) if family == socket.AF_INET6 else (ip, int(port or 0))
                out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return out

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return looked_up

    return install
