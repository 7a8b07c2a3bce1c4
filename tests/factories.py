"""Rows for tests, built with factory-boy: the one place that knows what a valid row of each model looks like.

Factories create real rows (no mocks of the project's own reads). `make_item`, `make_analysis` and `make_media`
are the short forms most review and ops tests use; `payload_for` is the `analysis.completed` payload of an
analysis, as the pipeline publishes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any, cast

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory, Password

from analysis.models import Analysis, BedrockCall, DetectorResult
from hlekkr.accounts.models import Role, User
from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint
from media.models import MediaItem
from ratelimit.models import RateLimitHit
from review.models import PRIORITY_RANK, ModeratorProfile, Priority, ReviewItem

PASSWORD = "correct-horse-battery-1"
MIME = {"image": "image/png", "video": "video/mp4", "audio": "audio/wav"}


def _verdict(trust: int) -> str:
    return "likely_manipulated" if trust < 40 else ("suspicious" if trust < 70 else "likely_authentic")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.CLIENT
    password = Password(PASSWORD)


class ModeratorProfileFactory(DjangoModelFactory):
    class Meta:
        model = ModeratorProfile

    user = factory.SubFactory(UserFactory, role=Role.MODERATOR)
    seniority = "senior"
    expertise = factory.LazyFunction(lambda: {"image": 3})


class MediaItemFactory(DjangoModelFactory):
    class Meta:
        model = MediaItem

    owner = factory.SubFactory(UserFactory)
    kind = "image"
    mime_type = factory.LazyAttribute(lambda o: MIME[o.kind])
    size = 1234
    sha256 = factory.LazyFunction(lambda: hashlib.sha256(uuid.uuid4().bytes).hexdigest())
    original_filename = factory.LazyAttribute(lambda o: f"sample.{o.kind}")
    storage_key = factory.LazyFunction(lambda: f"media/{uuid.uuid4()}/original")
    status = "stored"
    analysis_status = "completed"


class AnalysisFactory(DjangoModelFactory):
    class Meta:
        model = Analysis

    media = factory.SubFactory(MediaItemFactory)
    run_number = 1
    status = "completed"
    manipulation_probability = 0.8
    confidence = 0.7
    trust_score = factory.LazyAttribute(lambda o: round(100 * (1 - o.manipulation_probability)))
    verdict = factory.LazyAttribute(lambda o: _verdict(o.trust_score))


class DetectorResultFactory(DjangoModelFactory):
    class Meta:
        model = DetectorResult

    analysis = factory.SubFactory(AnalysisFactory)
    detector = "ela"
    detector_version = "1"
    status = "ok"
    score = 0.5


class BedrockCallFactory(DjangoModelFactory):
    class Meta:
        model = BedrockCall

    run_id = factory.LazyFunction(uuid.uuid4)
    sequence = factory.Sequence(lambda n: n % 30000)
    model_id = "anthropic.claude-test"
    outcome = "ok"
    cost_usd = 0


class WebhookEndpointFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    owner = factory.SubFactory(UserFactory)
    url = "https://hooks.example.org/hlekkr"
    events = factory.LazyFunction(lambda: ["analysis.completed"])
    secret = factory.LazyFunction(lambda: uuid.uuid4().hex)


class WebhookDeliveryFactory(DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event = "analysis.completed"
    event_id = factory.LazyFunction(uuid.uuid4)
    status = "pending"
    next_attempt_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=24))
    last_attempt_at = factory.LazyFunction(timezone.now)


class ReviewItemFactory(DjangoModelFactory):
    class Meta:
        model = ReviewItem

    class Params:
        due_in = dt.timedelta(hours=8)

    analysis = factory.SubFactory(AnalysisFactory)
    media = factory.LazyAttribute(lambda o: o.analysis.media)
    priority = "medium"
    priority_rank = factory.LazyAttribute(lambda o: PRIORITY_RANK[Priority(o.priority)])
    reasons = factory.LazyFunction(lambda: [{"code": "high_probability", "text": "test"}])
    required_expertise = factory.LazyFunction(lambda: ["image"])
    reviewers_required = 1
    open_slots = factory.LazyAttribute(lambda o: o.reviewers_required)
    due_at = factory.LazyAttribute(lambda o: timezone.now() + o.due_in)
    kind = factory.LazyAttribute(lambda o: o.media.kind)
    machine_trust_score = factory.LazyAttribute(lambda o: o.analysis.trust_score)
    machine_probability = factory.LazyAttribute(lambda o: o.analysis.manipulation_probability)
    machine_confidence = factory.LazyAttribute(lambda o: o.analysis.confidence)
    machine_verdict = factory.LazyAttribute(lambda o: o.analysis.verdict)


class RateLimitHitFactory(DjangoModelFactory):
    """One key's flushed counts for one minute (what the rate-limit monitor and the ops alerts read)."""

    class Meta:
        model = RateLimitHit

    key = factory.Sequence(lambda n: f"ip:203.0.113.{n % 250}")
    group = "read"
    minute = factory.LazyFunction(lambda: timezone.now().replace(second=0, microsecond=0))
    requests = factory.LazyAttribute(lambda o: o.refused)
    refused = 0


# --- short forms -------------------------------------------------------------------------------------------
def make_media(owner: User, *, kind: str = "image", **fields: Any) -> MediaItem:
    return cast(MediaItem, MediaItemFactory(owner=owner, kind=kind, **fields))


def make_analysis(owner: User, *, probability: float = 0.8, confidence: float = 0.7, kind: str = "image") -> Analysis:
    analysis = AnalysisFactory(
        media=make_media(owner, kind=kind), manipulation_probability=probability, confidence=confidence
    )
    return cast(Analysis, analysis)


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
    item = ReviewItemFactory(
        analysis=make_analysis(owner, probability=probability, confidence=confidence),
        priority=priority,
        reviewers_required=reviewers,
        due_in=due_in,
        required_expertise=expertise if expertise is not None else ["image"],
    )
    return cast(ReviewItem, item)


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
