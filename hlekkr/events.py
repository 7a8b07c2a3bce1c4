"""Domain events: how one app starts work in another without importing it.

Services call ``publish("media.stored", {...})`` inside their transaction. Subscribers register in their
``AppConfig.ready()`` with ``subscribe(name, handler, after_commit=...)``:

* ``after_commit=False`` (database-only work): runs immediately, inside the publisher's transaction, so it
  commits or rolls back together with the publisher (an analysis and its review item commit together).
* ``after_commit=True`` (outside effects: Celery enqueues, webhooks): runs via ``transaction.on_commit``, so it
  never runs for a rolled-back transaction. Because the process may die between commit and the callback, what
  such a subscriber starts must be recoverable from database rows (the reconcilers re-enqueue stuck work).

Payloads are plain JSON-able data (ids as strings), never model instances, so they can cross into tasks and
webhook bodies unchanged. Event names are the webhook event names.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

MEDIA_STORED = "media.stored"
MEDIA_DELETED = "media.deleted"
ANALYSIS_COMPLETED = "analysis.completed"
ANALYSIS_FAILED = "analysis.failed"
REVIEW_DECIDED = "review.decided"
MEDIA_FETCH_FINISHED = "media.fetch_finished"  # a URL fetch ended: stored, duplicate or failed
BATCH_COMPLETED = "batch.completed"  # every item of a batch is terminal
KNOWN_EVENTS = frozenset(
    {
        MEDIA_STORED,
        MEDIA_DELETED,
        ANALYSIS_COMPLETED,
        ANALYSIS_FAILED,
        REVIEW_DECIDED,
        MEDIA_FETCH_FINISHED,
        BATCH_COMPLETED,
    }
)

Handler = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Subscription:
    handler: Handler
    after_commit: bool


_subscribers: dict[str, list[Subscription]] = defaultdict(list)


def subscribe(event: str, handler: Handler, *, after_commit: bool) -> None:
    if event not in KNOWN_EVENTS:
        raise ValueError(f"unknown event {event!r}")
    subscription = Subscription(handler, after_commit)
    if subscription not in _subscribers[event]:  # ready() may run twice in tests; subscribe once
        _subscribers[event].append(subscription)


def unsubscribe(event: str, handler: Handler) -> None:
    _subscribers[event] = [s for s in _subscribers[event] if s.handler is not handler]


def publish(event: str, payload: dict[str, Any]) -> None:
    """Deliver `event` to its subscribers; in-transaction ones now, outside-effect ones after commit."""
    if event not in KNOWN_EVENTS:
        raise ValueError(f"unknown event {event!r}")
    data = dict(payload)
    for subscription in list(_subscribers[event]):
        if subscription.after_commit:
            transaction.on_commit(_guarded(subscription.handler, event, data), robust=True)
        else:
            subscription.handler(event, data)


def _guarded(handler: Handler, event: str, payload: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        # After commit, a failing subscriber must not break the request that already committed; the reconcilers
        # pick up whatever it failed to start.
        try:
            handler(event, payload)
        except Exception:
            logger.exception("after-commit subscriber %s failed for %s", getattr(handler, "__name__", handler), event)

    return run
