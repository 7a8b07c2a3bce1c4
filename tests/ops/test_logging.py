"""Request ids: on every log line of a request (plain and JSON), and carried into the tasks it enqueues."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter

from hlekkr.ops.logging import RequestIdFilter, request_id_var
from tests.ops import logging_urls

pytestmark = pytest.mark.django_db


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.ops.logging_urls"
    logging_urls.SEEN_IN_TASKS.clear()


def test_a_log_line_emitted_in_a_request_carries_its_request_id(client: Any, captured: _Capture, urls: None) -> None:
    response = client.get("/log-and-enqueue/")
    request_id = response["X-Request-ID"]
    line = next(r for r in captured.records if r.getMessage() == "inside the view")
    assert line.request_id == request_id  # type: ignore[attr-defined]


def test_a_well_formed_incoming_request_id_is_kept(client: Any, captured: _Capture, urls: None) -> None:
    response = client.get("/log-and-enqueue/", HTTP_X_REQUEST_ID="upstream-id-12345")
    assert response["X-Request-ID"] == "upstream-id-12345"
    line = next(r for r in captured.records if r.getMessage() == "inside the view")
    assert line.request_id == "upstream-id-12345"  # type: ignore[attr-defined]


def test_a_malformed_incoming_request_id_is_replaced(client: Any, urls: None) -> None:
    response = client.get("/log-and-enqueue/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_json_log_lines_carry_the_request_id_as_a_field(settings: Any) -> None:
    fmt = settings.LOGGING["formatters"]["json"]["format"]
    formatter = JsonFormatter(fmt)
    record = logging.LogRecord("hlekkr.test", logging.INFO, __file__, 1, "hello", None, None)
    token = request_id_var.set("abc123def456")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(formatter.format(record))
    assert line["request_id"] == "abc123def456"
    assert line["message"] == "hello"
    assert line["levelname"] == "INFO"


def test_outside_a_request_the_request_id_is_a_dash() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"  # type: ignore[attr-defined]


def test_a_task_enqueued_from_a_request_runs_with_its_request_id(client: Any, urls: None) -> None:
    """Through a real worker (in a thread, on the in-memory broker): the id travels in the message headers."""
    from celery.contrib.testing.worker import start_worker

    from hlekkr.celery import app

    was_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
            response = client.get("/log-and-enqueue/")
            deadline = time.monotonic() + 20
            while not logging_urls.SEEN_IN_TASKS and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        app.conf.task_always_eager = was_eager
    assert [response["X-Request-ID"]] == logging_urls.SEEN_IN_TASKS


def test_an_eager_task_keeps_its_callers_request_id_and_restores_it(settings: Any) -> None:
    token = request_id_var.set("caller-id-1234")
    try:
        logging_urls.SEEN_IN_TASKS.clear()
        logging_urls.record_request_id.delay()  # eager in tests
        assert logging_urls.SEEN_IN_TASKS == ["caller-id-1234"]
        assert request_id_var.get() == "caller-id-1234"
    finally:
        request_id_var.reset(token)
    assert request_id_var.get() == "-"
