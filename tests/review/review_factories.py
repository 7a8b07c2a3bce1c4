"""Rows for review tests, created directly (no detector run needed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from django.utils import timezone

from analysis.models import Analysis
from hlekkr.accounts.models import User
from media.models import MediaItem
from review.models import ReviewItem

PASSWORD = "correct-horse-battery-1"


def make_media(owner: User, *, kind: str = "image") -> MediaItem:
    return MediaItem.objects.create(
        owner=owner,
        kind=kind,
        mime_type={"image": "image/png", "video": "video/mp4", "audio": "audio/wav"}[kind],
        size=1234,
        sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        original_filename=f"sample.{kind}",
        storage_key=f"media/{uuid.uuid4()}/original",
        status="stored",
        analysis_status="completed",
    )


def make_analysis(owner: User, *, probability: float = 0.8, confidence: float = 0.7, kind: str = "image") -> Analysis:
    media = make_media(owner, kind=kind)
    trust = round(100 * (1 - probability))
    return Analysis.objects.create(
        media=media,
        run_number=1,
        status="completed",
        manipulation_probability=probability,
        trust_score=trust,
        confidence=confidence,
        verdict="likely_manipulated" if trust < 40 else ("suspicious" if trust < 70 else "likely_authentic"),
    )


def payload_for(analysis: Analysis, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "analysis_id": str(analysis.pk),
        "media_id": str(analysis.media_id),
        "owner_id": str(analysis.media.owner_id),
        "trust_score": analysis.trust_score,
        "verdict": analysis.verdict,
        "manipulation_probability": analysis.manipulation_probability,
        "confidence": analysis.confidence,
        "kind": analysis.media.kind,
        "decisive": [],
        "detector_scores": {"ela": analysis.manipulation_probability, "metadata": analysis.manipulation_probability},
        "faces": 0,
        "review_requested": False,
        "priority": "normal",
    }
    body.update(overrides)
    return body


def make_item(
    owner: User,
    *,
    priority: str = "medium",
    reviewers: int = 1,
    probability: float = 0.8,
    confidence: float = 0.7,
    due_in: dt.timedelta = dt.timedelta(hours=8),
    expertise: list[str] | None = None,
) -> ReviewItem:
    analysis = make_analysis(owner, probability=probability, confidence=confidence)
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}[priority]
    return ReviewItem.objects.create(
        analysis=analysis,
        media=analysis.media,
        priority=priority,
        priority_rank=rank,
        reasons=[{"code": "high_probability", "text": "test"}],
        required_expertise=expertise if expertise is not None else ["image"],
        reviewers_required=reviewers,
        open_slots=reviewers,
        due_at=timezone.now() + due_in,
        kind="image",
        machine_trust_score=analysis.trust_score,
        machine_probability=probability,
        machine_confidence=confidence,
        machine_verdict=analysis.verdict,
    )
