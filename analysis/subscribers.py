"""Domain-event subscribers of the analysis app, registered in AnalysisConfig.ready()."""

from __future__ import annotations

from typing import Any

from analysis.services import analysis_create_for_stored_media, analysis_enqueue_pending_for_media
from hlekkr import events


def on_media_stored_create_analysis(event: str, payload: dict[str, Any]) -> None:
    """Inside the media transaction: the queued Analysis commits together with the stored item."""
    queue = payload.get("queue") or "interactive"
    analysis_create_for_stored_media(media_id=str(payload["media_id"]), queue=queue)


def on_media_stored_enqueue(event: str, payload: dict[str, Any]) -> None:
    """After commit: send the task. If the process dies first, the reconciler sends it from the row."""
    analysis_enqueue_pending_for_media(media_id=str(payload["media_id"]))


def register() -> None:
    events.subscribe(events.MEDIA_STORED, on_media_stored_create_analysis, after_commit=False)
    events.subscribe(events.MEDIA_STORED, on_media_stored_enqueue, after_commit=True)
