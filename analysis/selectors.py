"""Reads for the analysis API and the media detail provider."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from analysis.models import Analysis, DetectorResult, ScoringPolicy
from hlekkr.accounts.models import User
from hlekkr.exceptions import NotFound
from media.models import MediaItem
from media.selectors import media_item_get_owned, visible_to


def media_for_user(*, user: User, media_id: Any) -> MediaItem:
    """The item if `user` owns it; NotFound otherwise. The API scopes exactly as the media app does (moderators
    study other clients' items through the review dashboard, not this API)."""
    return media_item_get_owned(owner=user, media_id=media_id)


def analysis_for_user(*, user: User, analysis_id: Any) -> Analysis:
    qs = Analysis.objects.select_related("media", "scoring_policy").prefetch_related(
        Prefetch("detector_results", queryset=DetectorResult.objects.order_by("detector"))
    )
    analysis = qs.filter(visible_to(user, through="media"), pk=analysis_id).first()
    if analysis is None:
        raise NotFound("No such analysis.", code="not_found")
    return analysis


def analyses_of_media(*, media: MediaItem) -> QuerySet[Analysis]:
    return Analysis.objects.filter(media=media).select_related("scoring_policy")


def latest_analysis(*, media: MediaItem, include_details: bool) -> Analysis | None:
    qs = Analysis.objects.filter(media_id=media.pk).select_related("scoring_policy").order_by("-run_number")
    if include_details:
        qs = qs.prefetch_related(Prefetch("detector_results", queryset=DetectorResult.objects.order_by("detector")))
    return qs.first()


def active_scoring_policy() -> ScoringPolicy | None:
    return ScoringPolicy.objects.filter(is_active=True).first()
