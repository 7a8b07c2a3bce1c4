"""Client webhook endpoints and the deliveries owed to them.

The database is the record of pending work: a delivery row is written inside the transaction that published the
domain event, and a periodic task sends whatever is due, so a lost broker message or a dead worker only delays a
delivery, never loses it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

# What a client may subscribe to -> the domain event that triggers it (DESIGN §3: webhook events are domain
# events; `review.completed` is the client-facing name of `review.decided`).
WEBHOOK_EVENTS: dict[str, str] = {
    "analysis.completed": "analysis.completed",
    "analysis.failed": "analysis.failed",
    "review.completed": "review.decided",
    "media.deleted": "media.deleted",
    "batch.completed": "batch.completed",
}
DOMAIN_TO_WEBHOOK: dict[str, str] = {domain: hook for hook, domain in WEBHOOK_EVENTS.items()}


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    events = models.JSONField(default=list)  # subset of WEBHOOK_EVENTS
    # The HMAC key shared with the receiver. Stored as issued because signing needs it (unlike an API key,
    # whose hash is enough to verify it); shown once at creation and never returned by the API or admin again.
    secret = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set by the first failed attempt after a success; an endpoint failing for 24 h without a success is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "is_active"])]

    def __str__(self) -> str:
        return f"{self.url} ({'active' if self.is_active else 'disabled'})"

    def wants(self, webhook_event: str) -> bool:
        return webhook_event in (self.events or [])


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (not tried yet)"
    FAILED = "failed", "Failed (will retry)"
    SUCCEEDED = "succeeded", "Succeeded"
    GIVEN_UP = "given_up", "Given up"


DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class WebhookDelivery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)  # the webhook event name, e.g. review.completed
    # Stable per domain event: the receiver de-duplicates on it (the same id on every retry and redelivery).
    event_id = models.UUIDField()
    payload = models.JSONField(default=dict)  # the `data` of the body
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due. A worker that claims the delivery pushes it forward by a lease, so a crash
    # mid-attempt only delays the retry.
    next_attempt_at = models.DateTimeField()
    expires_at = models.DateTimeField()  # no retries after this (24 h after creation or the last redelivery)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # A domain event published twice (a retried task) yields one delivery per endpoint.
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once_per_event"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"]), models.Index(fields=["endpoint", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id} ({self.status})"
