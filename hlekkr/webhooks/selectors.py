"""Reads for the webhooks API, admin and tasks."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from hlekkr.accounts.models import User
from hlekkr.webhooks.models import DUE_STATUSES, DeliveryStatus, WebhookDelivery, WebhookEndpoint


def endpoints_of(owner: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(owner=owner)


def endpoint_of(owner: User, endpoint_id: Any) -> WebhookEndpoint | None:
    """The owner's endpoint, or None (for another owner's id as for a missing one: the API answers 404)."""
    try:
        return endpoints_of(owner).get(pk=endpoint_id)
    except (WebhookEndpoint.DoesNotExist, ValueError, TypeError):
        return None


def deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint)


def due_delivery_ids(*, limit: int = 500) -> list[uuid.UUID]:
    """Deliveries whose next attempt is due, oldest first (the beat task hands them to workers)."""
    return list(
        WebhookDelivery.objects.filter(
            status__in=DUE_STATUSES, next_attempt_at__lte=timezone.now(), endpoint__is_active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def pending_delivery_ids_for_event(event_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        WebhookDelivery.objects.filter(event_id=event_id, status=DeliveryStatus.PENDING).values_list("pk", flat=True)
    )
