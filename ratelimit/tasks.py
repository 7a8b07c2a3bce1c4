"""Thin Celery tasks of the ratelimit app."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from hlekkr.exceptions import TransientError
from ratelimit.selectors import refusal_alert
from ratelimit.services import ratelimit_monitor_flush

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(TransientError,), max_retries=3, soft_time_limit=50, time_limit=60)
def ratelimit_monitor_flush_task() -> int:
    """Flush the monitor counters; warn (once per 10 minutes) while refusals pass the hourly threshold."""
    rows = ratelimit_monitor_flush()
    state = refusal_alert()
    if state["firing"]:
        try:
            first = cache.add("ratelimit:alert-logged", 1, timeout=600)
        except Exception:
            first = True
        if first:
            logger.warning(
                "rate-limit refusals in the last hour: %s (threshold %s)", state["refusals"], state["threshold"]
            )
    return rows
