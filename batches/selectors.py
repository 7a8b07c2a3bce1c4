"""Reads of the batches app: the owner-scoped batch and its progress body."""

from __future__ import annotations

from typing import Any

from batches.models import Batch, BatchItem
from batches.services import batch_counts
from hlekkr.accounts.models import User
from hlekkr.exceptions import NotFound


def batch_get_owned(*, owner: User, batch_id: Any) -> Batch:
    batch = Batch.objects.filter(pk=batch_id, owner=owner).first()
    if batch is None:
        raise NotFound("No such batch.", code="not_found")
    return batch


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _item_row(item: BatchItem) -> dict[str, Any]:
    media = item.media
    return {
        "index": item.position,
        "media_id": str(item.media_id)
        if item.media_id
        else (str(item.fetch_media_id) if item.fetch_media_id else None),
        "url": item.url or None,
        "state": item.state,
        # The verdict as it lands: the human one once review decided, else the machine's.
        "verdict": (media.final_verdict or media.verdict or None) if media is not None else None,
        "machine_verdict": (media.verdict or None) if media is not None else None,
        "trust_score": media.trust_score if media is not None else None,
        "analysis_status": (media.analysis_status or None) if media is not None else None,
        "error": item.error_code or None,
    }


def batch_body(batch: Batch) -> dict[str, Any]:
    """Progress: counts by state and every item's verdict as it lands (two queries, whatever the size)."""
    counts = batch_counts(batch)
    items = BatchItem.objects.filter(batch=batch).select_related("media").order_by("position")
    return {
        "id": str(batch.pk),
        "status": batch.status,
        "total": batch.total,
        "counts": counts,
        "progress": round((counts["done"] + counts["failed"]) / batch.total, 4) if batch.total else 1.0,
        "created_at": _iso(batch.created_at),
        "completed_at": _iso(batch.completed_at),
        "items": [_item_row(item) for item in items],
    }
