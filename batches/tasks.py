"""Thin Celery tasks of the batches app."""

from __future__ import annotations

from celery import shared_task

from batches.services import batches_reconcile


@shared_task(bind=True, acks_late=True, soft_time_limit=120, time_limit=150)
def reconcile_batches_task(self: object) -> dict[str, int]:
    """Every minute: settle items whose event was missed, dispatch waiting items, complete finished batches."""
    return batches_reconcile()
