"""Thin Celery tasks: ids in, services do the work. Retries are scheduled in the database, not by Celery."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from celery import shared_task

from hlekkr.webhooks import selectors, services

QUEUE = "webhooks"


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True, soft_time_limit=90, time_limit=120)
def webhook_deliver_task(delivery_id: str) -> None:
    services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.dispatch_due", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def webhook_dispatch_due_task() -> int:
    """Beat: hand every due delivery to a worker (first attempts whose message was lost, and retries)."""
    ids = selectors.due_delivery_ids()
    enqueue(ids)
    return len(ids)


def enqueue(delivery_ids: Iterable[uuid.UUID | str]) -> None:
    for delivery_id in delivery_ids:
        webhook_deliver_task.apply_async(args=[str(delivery_id)], queue=QUEUE)
