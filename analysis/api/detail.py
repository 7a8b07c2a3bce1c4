"""The media detail provider: media.extensions merges what this returns into `GET media/{id}/`."""

from __future__ import annotations

from typing import Any

from analysis.api.serializers import analysis_detail, analysis_summary
from analysis.selectors import latest_analysis


def media_detail_analysis(item: Any, *, include_details: bool) -> dict[str, Any]:
    """{"analysis": latest run summary (+ detectors and breakdown with include_details)} or {"analysis": None}."""
    analysis = latest_analysis(media=item, include_details=include_details)
    if analysis is None:
        return {"analysis": None}
    return {"analysis": analysis_detail(analysis) if include_details else analysis_summary(analysis)}
