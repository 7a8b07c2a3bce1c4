"""Thin Celery tasks: ids only, idempotent; the services hold the logic."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from hlekkr.exceptions import TransientError

# Debounce: a burst of triggers (items arriving, decisions landing, leases expiring) schedules one run.
ASSIGNMENT_SCHEDULED_KEY = "review:assignment:scheduled"
ASSIGNMENT_RUNNING_KEY = "review:assignment:running"
ASSIGNMENT_DEBOUNCE_SECONDS = 3


def assignment_run_schedule() -> bool:
    """Enqueue one batch assignment run unless one is already scheduled; True when this call scheduled it."""
    if not cache.add(ASSIGNMENT_SCHEDULED_KEY, 1, timeout=ASSIGNMENT_DEBOUNCE_SECONDS * 4):
        return False
    try:
        review_assignment_run_task.apply_async(countdown=ASSIGNMENT_DEBOUNCE_SECONDS, queue="interactive")
    except Exception:
        cache.delete(ASSIGNMENT_SCHEDULED_KEY)  # nothing was enqueued: the next trigger must be able to schedule
        raise
    return True


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def review_assignment_run_task(self) -> int:
    from review.services import review_assignment_run

    # Clear the "scheduled" mark first, so a trigger arriving during this run schedules the next one.
    cache.delete(ASSIGNMENT_SCHEDULED_KEY)
    if not cache.add(ASSIGNMENT_RUNNING_KEY, 1, timeout=90):
        assignment_run_schedule()  # another run is in progress: try again after it
        return 0
    try:
        return review_assignment_run()
    finally:
        cache.delete(ASSIGNMENT_RUNNING_KEY)


@shared_task(
    bind=True, acks_late=True, autoretry_for=(TransientError,), max_retries=3, soft_time_limit=60, time_limit=90
)
def review_leases_expire_task(self) -> int:
    from review.services import review_leases_expire

    return review_leases_expire()
