"""Living through a broker outage: sends fail fast (settings: no publish retries, short connect timeout), their
failures log one line, and work whose send failed is sent again within seconds of the broker's return.

Why here and not only in the analysis reconciler: the reconciler re-sends a queued analysis once its last send
is `HLEKKR_ANALYSIS_REQUEUE_AFTER` (60 s) old, a rule that protects a long queue from duplicate messages but
leaves uploads made during a short outage waiting one to two minutes after the broker is back. A worker knows
the moment the broker returns: its consumer reconnects. Each (re)connection sends one `ops.broker_returned`
task, which re-sends the analyses still queued whose last send falls inside the outage (or the last
requeue-after window, for a worker that started during it). Re-sending is safe against duplicates: the
analysis claim lets only one delivery run an analysis, and a send that already landed just costs a message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import bootsteps
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

RESEND_LOCK_KEY = "ops:broker-returned"
RESEND_LOCK_SECONDS = 10  # workers reconnecting together re-send once


def resend_after_broker_return(*, connected_at: datetime, lost_at: datetime | None = None) -> int:
    """Re-send the analyses still queued whose last send happened between the outage's start (`lost_at`, or one
    requeue-after window before `connected_at` when unknown) and the reconnection. Returns how many."""
    from analysis import conf as analysis_conf
    from analysis.models import Analysis, AnalysisStatus
    from analysis.services import analysis_enqueue

    try:
        if not cache.add(RESEND_LOCK_KEY, "1", timeout=RESEND_LOCK_SECONDS):
            return 0  # another worker's reconnection is re-sending them
    except Exception:  # the cache may be away too: re-sending twice is harmless, not re-sending is not
        logger.warning("broker returned: cache unavailable, re-sending without the cross-worker lock")
    window = timedelta(seconds=analysis_conf.requeue_after_seconds())
    since = min(lost_at, connected_at - window) if lost_at else connected_at - window
    pending = Analysis.objects.filter(
        status=AnalysisStatus.QUEUED, enqueued_at__gte=since - timedelta(seconds=5), enqueued_at__lt=connected_at
    ).values_list("pk", flat=True)
    resent = sum(analysis_enqueue(analysis_id=analysis_id) for analysis_id in list(pending))
    if resent:
        logger.info("broker returned: re-sent %d queued analyses", resent)
    return resent


class BrokerReturnStep(bootsteps.StartStopStep):
    """A consumer step: Celery restarts the consumer's steps on every reconnection, so start() runs each time
    the broker is reachable again (and once at worker start)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.lost_at: datetime | None = None

    def start(self, parent: Any) -> None:
        connected_at = timezone.now()
        lost_at, self.lost_at = self.lost_at, None
        try:
            parent.app.send_task(
                "ops.broker_returned",
                kwargs={
                    "connected_at": connected_at.isoformat(),
                    "lost_at": lost_at.isoformat() if lost_at else None,
                },
                queue="maintenance",
                expires=300,
            )
        except Exception as exc:  # the broker went away again: the next reconnection sends it
            logger.warning("broker returned: could not send the re-send task: %s", type(exc).__name__)

    def stop(self, parent: Any) -> None:
        # Called when the consumer restarts after losing the connection (and at shutdown).
        self.lost_at = self.lost_at or timezone.now()

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
