"""A loopback HTTP server that serves what a test tells it to, for the URL-fetch tests (media, batches).

Only ever 127.0.0.1; the tests list its `host:port` in HLEKKR_FETCH_ALLOWED_HOSTS, as an operator would list an
internal source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "image/jpeg"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    delay_per_chunk: float = 0.0  # seconds between 1 KiB chunks: a slow server


class FetchServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[str], Route]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                route = server.routes.get(self.path)
                if callable(route):
                    route = route(self.path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(route.status)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if not route.delay_per_chunk:
                        self.wfile.write(route.body)
                        return
                    for start in range(0, len(route.body), 1024):
                        self.wfile.write(route.body[start : start + 1024])
                        self.wfile.flush()
                        time.sleep(route.delay_per_chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher gave up on us, as it should

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def serve(self, path: str, body: bytes = b"", content_type: str = "image/jpeg", **kwargs: Any) -> str:
        self.routes[path] = Route(body=body, content_type=content_type, **kwargs)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, content_type="", headers={"Location": to})
        return self.url(path)


@pytest.fixture
def fetch_server(settings: Any) -> Iterator[FetchServer]:
    server = FetchServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    settings.HLEKKR_FETCH_ALLOWED_HOSTS = server.host
    settings.HLEKKR_FETCH_TOTAL_TIMEOUT = 3.0
    settings.HLEKKR_FETCH_CONNECT_TIMEOUT = 1.0
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
