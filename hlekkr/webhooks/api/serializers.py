from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hlekkr.accounts.serializers import StrictSerializerMixin
from hlekkr.webhooks.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint


@extend_schema_field(
    {
        "type": "string",
        "format": "uri",
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
        "maxLength": 2048,
        "description": "An http(s) URL whose host resolves to a public address (else 400 webhook_url_forbidden).",
    }
)
class WebhookUrlField(serializers.CharField):
    """A string here; the SSRF check in the service judges it, with its own error code (docs/webhooks.md)."""


class EndpointCreateInput(StrictSerializerMixin, serializers.Serializer):
    url = WebhookUrlField(max_length=2048, trim_whitespace=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(WEBHOOK_EVENTS)), min_length=1, max_length=len(WEBHOOK_EVENTS)
    )


ENDPOINT_FIELDS: tuple[str, ...] = (
    "id",
    "url",
    "events",
    "is_active",
    "disabled_reason",
    "disabled_at",
    "failing_since",
    "created_at",
)


class EndpointOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ENDPOINT_FIELDS
        read_only_fields = ENDPOINT_FIELDS


class EndpointCreatedOutput(EndpointOutput):
    secret = serializers.CharField(help_text="The signing secret. Shown once: store it now.")

    class Meta(EndpointOutput.Meta):
        fields = (*ENDPOINT_FIELDS, "secret")
        read_only_fields = (*ENDPOINT_FIELDS, "secret")


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "event_id",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        )
        read_only_fields = fields
