"""Domain-event subscribers of the batches app, registered in BatchesConfig.ready().

In the publisher's transaction: settle the batch items the event ends (and complete their batches, publishing
`batch.completed` with them). After commit: start the owner's waiting items in the slots that freed up."""

from __future__ import annotations

from typing import Any

from hlekkr import events


def on_analysis_completed(event: str, payload: dict[str, Any]) -> None:
    from batches.services import batch_items_settle_analysis

    batch_items_settle_analysis(media_id=payload["media_id"], completed=True)


def on_analysis_failed(event: str, payload: dict[str, Any]) -> None:
    from batches.services import batch_items_settle_analysis

    batch_items_settle_analysis(media_id=payload["media_id"], completed=False)


def on_fetch_finished(event: str, payload: dict[str, Any]) -> None:
    from batches.services import batch_items_settle_fetch

    batch_items_settle_fetch(
        placeholder_id=payload["media_id"],
        state=payload["state"],
        resolved_id=payload.get("resolved_media_id") or None,
        error_code=payload.get("error_code") or "",
    )


def dispatch_after(event: str, payload: dict[str, Any]) -> None:
    from batches.models import BatchItem, BatchItemState
    from batches.services import batch_dispatch

    owner_id = payload.get("owner_id")
    if owner_id and BatchItem.objects.filter(owner_id=owner_id, state=BatchItemState.WAITING).exists():
        batch_dispatch(owner_id=owner_id)


def register() -> None:
    events.subscribe(events.ANALYSIS_COMPLETED, on_analysis_completed, after_commit=False)
    events.subscribe(events.ANALYSIS_FAILED, on_analysis_failed, after_commit=False)
    events.subscribe(events.MEDIA_FETCH_FINISHED, on_fetch_finished, after_commit=False)
    for event in (events.ANALYSIS_COMPLETED, events.ANALYSIS_FAILED, events.MEDIA_FETCH_FINISHED):
        events.subscribe(event, dispatch_after, after_commit=True)
