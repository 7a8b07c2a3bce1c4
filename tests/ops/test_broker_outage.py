"""A broker outage: sends fail fast, their failure is one log line, and work whose send failed is re-sent as
soon as a worker's consumer reconnects (hlekkr/ops/broker.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from hlekkr.ops import broker
from hlekkr.ops.logging import OutageTracebackFilter

ROOT = Path(__file__).resolve().parents[2]


# --- the send ------------------------------------------------------------------------------------------------
def test_a_send_to_a_broker_that_is_away_fails_within_a_second(tmp_path: Path) -> None:
    """kombu retried the connection inside every send (2 s per upload during an outage); now it fails at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
            "HLEKKR_VAR_DIR": str(tmp_path),
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        }
    )
    script = (
        "import time, django; django.setup()\n"
        "from hlekkr.celery import ping\n"
        "from kombu.exceptions import OperationalError\n"
        "for attempt in range(2):\n"
        "    started = time.monotonic()\n"
        "    try:\n"
        "        ping.apply_async()\n"
        "    except OperationalError:\n"
        "        pass\n"
        "    print(time.monotonic() - started)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    second_send = float(out.stdout.split()[-1])
    assert second_send < 1.0


# --- the log line --------------------------------------------------------------------------------------------
def _record(exc: BaseException, message: str = "could not send analysis %s") -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        return logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, message, ("a1",), sys.exc_info())


def test_a_broker_connection_failure_is_logged_as_one_line_without_a_traceback() -> None:
    from kombu.exceptions import OperationalError

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as inner:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.") from inner
    except OperationalError as outer:
        record = _record(outer)
    assert OutageTracebackFilter().filter(record)
    assert record.exc_info is None
    line = logging.Formatter("%(message)s").format(record)
    assert (
        line
        == "could not send analysis a1 (OperationalError: Error 111 connecting to 127.0.0.1:6379. Connection refused.)"
    )
    assert "\n" not in line


def test_other_exceptions_keep_their_traceback() -> None:
    record = _record(ValueError("a bug"))
    assert OutageTracebackFilter().filter(record)
    assert record.exc_info is not None
    assert "Traceback" in logging.Formatter("%(message)s").format(record)


# --- the prompt re-send ---------------------------------------------------------------------------------------
@pytest.fixture
def sent() -> Any:
    with mock.patch("analysis.tasks.analyze_media_task.apply_async") as apply_async:
        yield apply_async


@pytest.mark.django_db(transaction=True)
def test_queued_analyses_whose_send_fell_in_the_outage_are_re_sent_on_reconnection(
    make_analysis: Any, sent: Any
) -> None:
    cache.delete(broker.RESEND_LOCK_KEY)
    now = timezone.now()
    lost_at = now - timedelta(seconds=200)  # longer than the reconciler's 60 s window
    during = [make_analysis(enqueued_at=now - timedelta(seconds=s), enqueue_count=1) for s in (150, 20)]
    before_outage = make_analysis(enqueued_at=now - timedelta(seconds=600), enqueue_count=1)
    running = make_analysis(status="running", enqueued_at=now - timedelta(seconds=20))
    after = make_analysis(enqueued_at=now + timedelta(seconds=1), enqueue_count=1)  # sent by the new connection

    assert broker.resend_after_broker_return(connected_at=now, lost_at=lost_at) == 2
    assert sorted(call.kwargs["args"][0] for call in sent.call_args_list) == sorted(str(a.pk) for a in during)
    for analysis in (before_outage, running, after):
        analysis.refresh_from_db()
        assert analysis.enqueue_count in (0, 1)


@pytest.mark.django_db(transaction=True)
def test_workers_reconnecting_together_re_send_once(make_analysis: Any, sent: Any) -> None:
    cache.delete(broker.RESEND_LOCK_KEY)
    now = timezone.now()
    make_analysis(enqueued_at=now - timedelta(seconds=5), enqueue_count=1)
    assert broker.resend_after_broker_return(connected_at=now) == 1
    assert broker.resend_after_broker_return(connected_at=now) == 0
    assert sent.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_without_a_known_outage_start_it_re_sends_the_last_requeue_window(make_analysis: Any, sent: Any) -> None:
    """A worker started during the outage never saw it begin: sends older than the reconciler's window are the
    reconciler's (it re-sends those on its next run)."""
    cache.delete(broker.RESEND_LOCK_KEY)
    now = timezone.now()
    recent = make_analysis(enqueued_at=now - timedelta(seconds=30), enqueue_count=1)
    make_analysis(enqueued_at=now - timedelta(seconds=300), enqueue_count=1)
    assert broker.resend_after_broker_return(connected_at=now) == 1
    assert sent.call_args.kwargs["args"] == [str(recent.pk)]


def test_the_consumer_step_sends_the_re_send_task_with_the_outage_start() -> None:
    parent = mock.Mock()
    step = broker.BrokerReturnStep(parent)
    step.start(parent)  # worker start: no outage known
    first = parent.app.send_task.call_args
    assert first.args == ("ops.broker_returned",) and first.kwargs["kwargs"]["lost_at"] is None
    assert first.kwargs["queue"] == "maintenance"
    step.stop(parent)  # the connection was lost
    time.sleep(0.01)
    step.start(parent)  # and came back
    again = parent.app.send_task.call_args.kwargs["kwargs"]
    assert again["lost_at"] is not None and again["lost_at"] < again["connected_at"]


def test_a_failing_send_of_the_re_send_task_does_not_stop_the_consumer() -> None:
    from kombu.exceptions import OperationalError

    parent = mock.Mock()
    parent.app.send_task.side_effect = OperationalError("gone again")
    broker.BrokerReturnStep(parent).start(parent)


def test_the_worker_consumer_runs_the_step() -> None:
    from hlekkr.celery import app

    assert broker.BrokerReturnStep in app.steps["consumer"]
