"""Every write of the webhooks app: endpoints, deliveries, attempts, disabling, redelivery."""

from __future__ import annotations

import http.client
import json
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import Conflict, ValidationFailed
from hlekkr.webhooks import signing, ssrf
from hlekkr.webhooks.models import (
    DOMAIN_TO_WEBHOOK,
    DUE_STATUSES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_OWNER = 10
RETRY_WINDOW = timedelta(hours=24)  # a delivery is retried this long
DISABLE_AFTER = timedelta(hours=24)  # an endpoint failing this long without one success is disabled
FIRST_RETRY_S = 30
MAX_RETRY_S = 3600
CLAIM_LEASE = timedelta(minutes=2)  # longer than an attempt can take (timeout x redirects)
REQUEST_TIMEOUT_S = 10.0
USER_AGENT = "Hlekkr-Webhooks/1"
_EVENT_NAMESPACE = uuid.UUID("5b0f0c5e-3c1e-4f5e-9a57-6b1f3d0c9a11")


def _url_for_audit(url: str) -> str:
    # Receivers sometimes put a token in the query string; the audit log keeps scheme, host and path only.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _check_destination(url: str) -> None:
    """The SSRF check, as the API's 400 webhook_url_forbidden."""
    try:
        ssrf.check_url(url)
    except ssrf.DestinationRefused as exc:
        raise ValidationFailed(
            f"Webhook URL refused: {exc.reason}.", code="webhook_url_forbidden", details={"url": exc.reason}
        ) from None


def webhook_endpoint_create(*, owner: User, url: str, events: list[str]) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint after the SSRF check; returns it and its signing secret (shown to the client once)."""
    _check_destination(url)
    secret = signing.new_secret()
    with transaction.atomic():
        # Lock the owner's endpoints so two concurrent registrations cannot both pass the limit.
        count = len(list(WebhookEndpoint.objects.select_for_update().filter(owner=owner).values_list("pk", flat=True)))
        if count >= MAX_ENDPOINTS_PER_OWNER:
            raise Conflict(
                f"At most {MAX_ENDPOINTS_PER_OWNER} webhook endpoints per account; delete one first.",
                code="webhook_limit_reached",
            )
        endpoint = WebhookEndpoint.objects.create(
            owner=owner, url=url.strip(), events=sorted(set(events)), secret=secret
        )
        audit_record(
            actor=owner,
            action="webhook.endpoint_created",
            target=endpoint,
            payload={"url": _url_for_audit(endpoint.url), "events": endpoint.events},
        )
    return endpoint, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: User | None) -> None:
    """Remove an endpoint and its delivery history (pending deliveries are dropped with it)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook.endpoint_deleted",
            target=endpoint,
            payload={"url": _url_for_audit(endpoint.url)},
        )
        endpoint.delete()


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor: User | None) -> WebhookEndpoint:
    """Turn a disabled endpoint back on (its owner fixed the receiver). The URL is checked again."""
    _check_destination(endpoint.url)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.is_active:
            return locked
        locked.is_active = True
        locked.disabled_reason = ""
        locked.disabled_at = None
        locked.failing_since = None
        locked.save(update_fields=["is_active", "disabled_reason", "disabled_at", "failing_since", "updated_at"])
        audit_record(actor=actor, action="webhook.endpoint_enabled", target=locked)
    return locked


def event_id_for(domain_event: str, payload: dict[str, Any]) -> uuid.UUID:
    """The same domain event (name and payload) always gets the same id, so a publisher that runs twice
    creates no second delivery, and the after-commit enqueuer finds the rows the in-transaction subscriber made."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return uuid.uuid5(_EVENT_NAMESPACE, f"{domain_event}\n{canonical}")


def webhook_deliveries_create(*, domain_event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """One pending delivery per active endpoint of the payload's owner that subscribed to this event.

    Runs inside the publisher's transaction (after_commit=False subscriber): the deliveries commit with the
    analysis/review/deletion that caused them, or not at all.
    """
    webhook_event = DOMAIN_TO_WEBHOOK.get(domain_event)
    owner_id = payload.get("owner_id")
    if webhook_event is None or owner_id in (None, ""):
        if webhook_event is not None:
            logger.warning("%s published without owner_id; no webhook can be addressed", domain_event)
        return []
    endpoints = [e for e in WebhookEndpoint.objects.filter(owner_id=owner_id, is_active=True) if e.wants(webhook_event)]
    if not endpoints:
        return []
    now = timezone.now()
    event_id = event_id_for(domain_event, payload)
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event=webhook_event,
            event_id=event_id,
            payload=payload,
            next_attempt_at=now,
            expires_at=now + RETRY_WINDOW,
        )
        for endpoint in endpoints
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return rows


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The exact bytes sent (and signed): stable across retries, so receivers can de-duplicate on `id`."""
    document = {
        "id": str(delivery.event_id),
        "type": delivery.event,
        "created_at": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "data": delivery.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def retry_delay_s(attempts: int) -> float:
    """30 s, 1 min, 2 min, ... capped at 1 h, each +/-20 % so receivers that failed together do not get their
    retries together."""
    base = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


def _claim(delivery_id: Any, now: datetime) -> bool:
    """Take a due delivery for one attempt (conditional UPDATE): a second worker, or a duplicate message, finds
    it not due and leaves it alone. A worker that dies mid-attempt leaves it due again after the lease."""
    return (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status__in=DUE_STATUSES, next_attempt_at__lte=now, endpoint__is_active=True
        ).update(next_attempt_at=now + CLAIM_LEASE, last_attempt_at=now)
        == 1
    )


def webhook_delivery_attempt(*, delivery_id: Any, now: datetime | None = None) -> WebhookDelivery | None:
    """Send one due delivery and record the outcome; None when it was not due (or another worker has it).

    The HTTP request runs outside any transaction; only the claim and the outcome are written.
    """
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if now >= delivery.expires_at:
        return _record_failure(delivery, now=now, error="retry window of 24 h passed", status_code=None)
    body = delivery_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.header_value(delivery.endpoint.secret, body),
        "Hlekkr-Event": delivery.event,
        "Hlekkr-Delivery": str(delivery.pk),
    }
    try:
        response = ssrf.post(delivery.endpoint.url, body, headers, timeout=REQUEST_TIMEOUT_S)
    except ssrf.DestinationRefused as exc:
        return _record_failure(delivery, now=now, error=f"destination refused: {exc.reason}", status_code=None)
    except (OSError, http.client.HTTPException) as exc:
        return _record_failure(delivery, now=now, error=f"{exc.__class__.__name__}: {exc}", status_code=None)
    if 200 <= response.status < 300:
        return _record_success(delivery, now=now, status_code=response.status)
    excerpt = " ".join(response.excerpt.split())[:200]
    return _record_failure(
        delivery,
        now=now,
        error=f"HTTP {response.status}{': ' + excerpt if excerpt else ''}",
        status_code=response.status,
    )


def _record_success(delivery: WebhookDelivery, *, now: datetime, status_code: int) -> WebhookDelivery:
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SUCCEEDED,
            attempts=delivery.attempts + 1,
            delivered_at=now,
            last_status_code=status_code,
            last_error="",
        )
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=False).update(failing_since=None)
    delivery.refresh_from_db()
    return delivery


def _record_failure(
    delivery: WebhookDelivery, *, now: datetime, error: str, status_code: int | None
) -> WebhookDelivery:
    attempts = delivery.attempts + 1
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        fields: dict[str, Any] = {"attempts": attempts, "last_error": error[:500], "last_status_code": status_code}
        if now >= delivery.expires_at:
            fields["status"] = DeliveryStatus.GIVEN_UP
        else:
            fields["status"] = DeliveryStatus.FAILED
            fields["next_attempt_at"] = now + timedelta(seconds=retry_delay_s(attempts))
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if fields["status"] == DeliveryStatus.GIVEN_UP:
            audit_record(
                actor=None,
                action="webhook.delivery_given_up",
                target=delivery,
                payload={"endpoint": str(endpoint.pk), "event": delivery.event, "attempts": attempts, "error": error},
            )
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            endpoint.save(update_fields=["failing_since", "updated_at"])
        elif endpoint.is_active and now - endpoint.failing_since >= DISABLE_AFTER:
            _disable(endpoint, now=now, last_error=error)
    delivery.refresh_from_db()
    return delivery


def _disable(endpoint: WebhookEndpoint, *, now: datetime, last_error: str) -> None:
    since = endpoint.failing_since.isoformat() if endpoint.failing_since else now.isoformat()
    endpoint.is_active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"Every delivery failed for 24 h (since {since}); last error: {last_error}"[:255]
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    dropped = WebhookDelivery.objects.filter(endpoint=endpoint, status__in=DUE_STATUSES).update(
        status=DeliveryStatus.GIVEN_UP, last_error="endpoint disabled after failing for 24 h"
    )
    audit_record(
        actor=None,
        action="webhook.endpoint_disabled",
        target=endpoint,
        payload={"reason": endpoint.disabled_reason, "deliveries_given_up": dropped},
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)


def webhook_delivery_redeliver(*, delivery: WebhookDelivery, actor: User | None) -> WebhookDelivery:
    """Queue a delivery again now, with a fresh 24 h retry window (admin action; same event id and body)."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if not locked.endpoint.is_active:
            raise Conflict("The endpoint is disabled; enable it first.", code="webhook_endpoint_disabled")
        now = timezone.now()
        locked.status = DeliveryStatus.PENDING
        locked.next_attempt_at = now
        locked.expires_at = now + RETRY_WINDOW
        locked.save(update_fields=["status", "next_attempt_at", "expires_at"])
        audit_record(actor=actor, action="webhook.delivery_redelivered", target=locked, payload={"event": locked.event})
    return locked
