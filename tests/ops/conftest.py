"""Fixtures for the ops tests: clean in-process request stats, an analysis factory, a loopback receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from hlekkr.ops.stats import request_stats


@pytest.fixture(autouse=True)
def _fresh_storage_probe() -> Iterator[None]:
    from hlekkr.ops.checks import forget_storage_probe

    forget_storage_probe()
    yield
    forget_storage_probe()


@pytest.fixture(autouse=True)
def _clean_request_stats() -> Iterator[None]:
    with request_stats._lock:
        request_stats._pending.clear()
    yield
    with request_stats._lock:
        request_stats._pending.clear()


@pytest.fixture
def make_analysis(client_a: Any):
    """make_analysis(status=..., started_at=..., finished_at=...) -> Analysis of a fresh stored image."""
    from tests.factories import AnalysisFactory, make_media

    def make(status: str = "queued", **fields: Any) -> Any:
        unscored = {"manipulation_probability": None, "confidence": None, "trust_score": None, "verdict": ""}
        return AnalysisFactory(media=make_media(client_a, analysis_status=""), status=status, **{**unscored, **fields})

    return make


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(url, received bodies): an HTTP server on 127.0.0.1 in a thread; alerts POST here in tests."""
    handler: type[_Receiver] = type("Receiver", (_Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", handler.received
    server.shutdown()
    server.server_close()


def now() -> Any:
    return timezone.now()


@contextmanager
def audit_tampering() -> Iterator[None]:
    """Let a test edit or delete audit rows. On PostgreSQL the insert-only trigger refuses that, so it is
    disabled for the block (ALTER TABLE is transactional: the test's rollback restores it anyway)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_insert_only")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_insert_only")
