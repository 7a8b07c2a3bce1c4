"""Input and output serializers of the media API. Inputs reject unknown fields."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hlekkr.accounts.serializers import StrictBooleanField, StrictSerializerMixin
from media.models import MediaKind, MediaStatus

PRIORITIES = ("normal", "urgent")
# The machine verdicts (analysis.models.Verdict; media sits below analysis, so they are listed here).
VERDICTS = ("likely_authentic", "no_manipulation_found", "suspicious", "likely_manipulated", "inconclusive")


class DirectUploadInput(StrictSerializerMixin, serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    review_requested = StrictBooleanField(default=False)
    priority = serializers.ChoiceField(choices=PRIORITIES, default="normal")


class FromUrlInput(StrictSerializerMixin, serializers.Serializer):
    url = serializers.CharField(max_length=2048, trim_whitespace=True)
    review_requested = StrictBooleanField(default=False)
    priority = serializers.ChoiceField(choices=PRIORITIES, default="normal")


@extend_schema_field(
    {"type": "integer", "minimum": 1, "description": "Bytes; at most the caller's multipart limit (else 413)."}
)
class UploadSizeField(serializers.IntegerField):
    """0 passes the serializer so the service can answer it as `empty_file`, like an empty direct upload; the
    schema says what is accepted (at least one byte)."""


class MultipartStartInput(StrictSerializerMixin, serializers.Serializer):
    filename = serializers.CharField(max_length=4096, allow_blank=True)
    size = UploadSizeField(min_value=0)
    content_type = serializers.CharField(max_length=255, allow_blank=True)
    review_requested = StrictBooleanField(default=False)
    priority = serializers.ChoiceField(choices=PRIORITIES, default="normal")


class CompletePart(StrictSerializerMixin, serializers.Serializer):
    part_number = serializers.IntegerField(min_value=1, max_value=10_000)
    etag = serializers.CharField(max_length=200)


class MultipartCompleteInput(StrictSerializerMixin, serializers.Serializer):
    parts = CompletePart(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]


class MediaListFilters(StrictSerializerMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=MediaStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=MediaKind.choices, required=False)
    verdict = serializers.ChoiceField(choices=VERDICTS, required=False)
    trust_min = serializers.IntegerField(
        min_value=0, max_value=100, required=False, help_text="At most trust_max (400 otherwise)."
    )
    trust_max = serializers.IntegerField(min_value=0, max_value=100, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    # pagination parameters, read by the paginator
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=100, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("trust_min"), attrs.get("trust_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"trust_min": ["Must not exceed trust_max."]})
        return attrs


class DetailQuery(StrictSerializerMixin, serializers.Serializer):
    include_details = StrictBooleanField(default=False)


class MediaListRow(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    mime_type = serializers.CharField()
    size = serializers.IntegerField()
    original_filename = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    trust_score = serializers.IntegerField(allow_null=True)
    verdict = serializers.ChoiceField(choices=("", *VERDICTS))
    final_verdict = serializers.CharField()
    analysis_status = serializers.CharField()
    review_requested = serializers.BooleanField()
    priority = serializers.CharField()


class UploadPartUrl(serializers.Serializer):
    part_number = serializers.IntegerField()
    url = serializers.CharField()


class MultipartTicketOutput(serializers.Serializer):
    upload_id = serializers.UUIDField()
    media_id = serializers.UUIDField()
    state = serializers.CharField()
    size = serializers.IntegerField()
    part_size = serializers.IntegerField()
    part_count = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    parts = UploadPartUrl(many=True)
