"""Thin periodic tasks of the ops app (scheduled in hlekkr/ops/beat.py)."""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import shared_task, signals

from analysis import steps
from analysis.models import AnalysisQueue
from hlekkr.ops import services

logger = logging.getLogger(__name__)
ANALYSIS_QUEUES = frozenset(AnalysisQueue.values)


@shared_task(name="ops.heartbeat", bind=True, acks_late=True, ignore_result=True)
def heartbeat_task(self: Any, queue: str) -> None:
    """Proves that some worker consumes `queue` (beat sends one per queue every 30 s). On the analysis queues it
    also reports the required detectors this worker process could not load (docs/operations.md, readiness)."""
    errors = steps.unavailable_detectors() if queue in ANALYSIS_QUEUES else None
    services.heartbeat_record(
        hostname=self.request.hostname or socket.gethostname(), queues=[queue], detector_errors=errors
    )


@shared_task(name="ops.sample_queue_depth", acks_late=True, ignore_result=True)
def sample_queue_depth_task() -> None:
    services.queue_depth_sample_record()


@shared_task(name="ops.evaluate_alerts", acks_late=True, ignore_result=True)
def evaluate_alerts_task() -> None:
    report = services.alerts_evaluate()
    if report.opened or report.resolved:
        logger.warning("alerts opened=%s resolved=%s", report.opened, report.resolved)


@shared_task(name="ops.purge_records", acks_late=True, ignore_result=True)
def purge_records_task() -> None:
    services.ops_records_purge()


@shared_task(name="ops.broker_returned", acks_late=True, ignore_result=True, soft_time_limit=50, time_limit=60)
def broker_returned_task(connected_at: str, lost_at: str | None = None) -> int:
    """Sent by each worker's consumer when it (re)connects: re-send work whose send failed while it was away."""
    from hlekkr.ops.broker import parse_time, resend_after_broker_return

    connected = parse_time(connected_at)
    assert connected is not None
    return resend_after_broker_return(connected_at=connected, lost_at=parse_time(lost_at))


@signals.worker_ready.connect
def _heartbeat_on_start(sender: Any = None, **kwargs: Any) -> None:
    """Report at start-up for every queue this worker consumes, so a fresh worker counts before beat's first
    heartbeat round (30 s later)."""
    try:
        queues = sorted(q.name for q in sender.task_consumer.queues)
        hostname = sender.hostname
    except AttributeError:
        return
    try:
        services.heartbeat_record(hostname=hostname, queues=queues)
    except Exception:  # a start-up heartbeat must never stop the worker
        logger.exception("start-up heartbeat failed")
