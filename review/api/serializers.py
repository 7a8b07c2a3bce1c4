"""Input serializers reject unknown fields; output shapes are plain functions shared with the dashboard."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from hlekkr.accounts.serializers import StrictBooleanField, StrictSerializerMixin
from review.models import HumanVerdict, ItemStatus, Priority, ReviewItem


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def review_item_summary(item: ReviewItem) -> dict[str, Any]:
    active = getattr(item, "active_assignments", None)
    if active is None:
        active = [a for a in item.assignments.select_related("moderator") if a.status == "active"]
    return {
        "id": str(item.pk),
        "analysis_id": str(item.analysis_id),
        "media_id": str(item.media_id),
        "kind": item.kind,
        "status": item.status,
        "priority": item.priority,
        "reasons": item.reasons,
        "required_expertise": item.required_expertise,
        "reviewers_required": item.reviewers_required,
        "open_slots": item.open_slots,
        "due_at": _iso(item.due_at),
        "overdue": item.is_overdue,
        "machine": {
            "trust_score": item.machine_trust_score,
            "manipulation_probability": item.machine_probability,
            "confidence": item.machine_confidence,
            "verdict": item.machine_verdict or None,
        },
        "flags": {
            "qa_sample": item.qa_sample,
            "disagreement": item.disagreement,
            "inconsistency": item.inconsistency,
            "client_urgent": item.client_urgent,
        },
        "assignees": [
            {
                "moderator": a.moderator.username,
                "source": a.source,
                "lease_expires_at": _iso(a.lease_expires_at),
            }
            for a in active
        ],
        "escalation_note": item.escalation_note or None,
        "final_verdict": item.final_verdict or None,
        "final_confidence": item.final_confidence,
        "decided_at": _iso(item.decided_at),
        "created_at": _iso(item.created_at),
    }


def review_item_detail(item: ReviewItem) -> dict[str, Any]:
    from analysis.api.serializers import analysis_detail
    from media.storage import download_url

    body = review_item_summary(item)
    body["decisions"] = [
        {
            "moderator": d.moderator.username,
            "verdict": d.verdict,
            "confidence": d.confidence,
            "notes": d.notes,
            "overrides_machine": d.overrides_machine,
            "created_at": _iso(d.created_at),
        }
        for d in item.decisions.all()
    ]
    media = item.media
    body["media"] = {
        "id": str(media.pk),
        "kind": media.kind,
        "mime_type": media.mime_type,
        "size": media.size,
        "sha256": media.sha256,
        "width": media.width,
        "height": media.height,
        "duration_seconds": media.duration_seconds,
        "url": download_url(media.storage_key) if media.storage_key else None,  # short-lived
    }
    body["analysis"] = analysis_detail(item.analysis)
    return body


class QueueFilterSerializer(StrictSerializerMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=ItemStatus.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    expertise = serializers.RegexField(r"^[a-z_]{1,32}$", required=False)
    overdue = StrictBooleanField(required=False, allow_null=True, default=None)
    mine = StrictBooleanField(required=False, default=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)


class DecideSerializer(StrictSerializerMixin, serializers.Serializer):
    verdict = serializers.ChoiceField(choices=HumanVerdict.choices)
    confidence = serializers.FloatField(min_value=0.0, max_value=1.0)
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class EscalateSerializer(StrictSerializerMixin, serializers.Serializer):
    note = serializers.CharField(max_length=2000)


class AssignSerializer(StrictSerializerMixin, serializers.Serializer):
    moderator = serializers.CharField(max_length=150, help_text="Username of the moderator (yourself to take over).")
    replace = serializers.CharField(
        max_length=150, required=False, help_text="When every slot is held: the holder to move off the item."
    )


class GoldSerializer(StrictSerializerMixin, serializers.Serializer):
    verdict = serializers.ChoiceField(
        choices=[HumanVerdict.AUTHENTIC, HumanVerdict.MANIPULATED],
        required=False,
        help_text="The accepted verdict; by default the item's final verdict.",
    )


def gold_item_body(gold: Any) -> dict[str, Any]:
    return {
        "review_item_id": str(gold.item_id),
        "verdict": gold.verdict,
        "marked_by": gold.marked_by.username,
        "active": gold.is_active,
        "created_at": _iso(gold.created_at),
    }
