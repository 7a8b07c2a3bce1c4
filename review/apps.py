from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _on_analysis_completed(event: str, payload: dict[str, Any]) -> None:
    from review.services import review_item_create_for_analysis

    review_item_create_for_analysis(payload=payload)


def _after_analysis_completed(event: str, payload: dict[str, Any]) -> None:
    from review.tasks import assignment_run_schedule

    assignment_run_schedule()


def _on_media_deleted(event: str, payload: dict[str, Any]) -> None:
    from review.services import review_items_cancel_for_media

    media_id = payload.get("media_id") or payload.get("id")
    if media_id:
        review_items_cancel_for_media(media_id=media_id)


class ReviewConfig(AppConfig):
    name = "review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from hlekkr.events import ANALYSIS_COMPLETED, MEDIA_DELETED, subscribe

        # In the pipeline's transaction: the analysis and its review item commit together.
        subscribe(ANALYSIS_COMPLETED, _on_analysis_completed, after_commit=False)
        subscribe(ANALYSIS_COMPLETED, _after_analysis_completed, after_commit=True)
        subscribe(MEDIA_DELETED, _on_media_deleted, after_commit=False)
        from review import calibration_hooks

        calibration_hooks.register()
