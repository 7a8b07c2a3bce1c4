"""Deliveries: recorded with the domain event, signed, retried with backoff, endpoints disabled after 24 h."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from hlekkr.audit.models import AuditEvent
from hlekkr.events import publish
from hlekkr.webhooks import services, signing, ssrf
from hlekkr.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from hlekkr.webhooks.tasks import webhook_dispatch_due_task


@pytest.fixture
def endpoint(client_a: Any, receiver: Any) -> WebhookEndpoint:
    created, _secret = services.webhook_endpoint_create(
        owner=client_a, url=receiver.url, events=["analysis.completed", "review.completed", "media.deleted"]
    )
    return created


def _completed(owner: Any, **extra: Any) -> dict[str, Any]:
    return {
        "analysis_id": "a5d2c1f0-0000-4000-8000-000000000001",
        "media_id": "b5d2c1f0-0000-4000-8000-000000000002",
        "owner_id": owner.pk,
        "trust_score": 82,
        "verdict": "likely_authentic",
        **extra,
    }


def test_a_published_event_is_delivered_signed_after_commit(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        publish("analysis.completed", _completed(client_a))
        assert receiver.requests == []  # nothing leaves before commit
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert request.headers["Hlekkr-Event"] == "analysis.completed"
    assert request.headers["Hlekkr-Delivery"] == str(delivery.pk)
    assert signing.verify(endpoint.secret, request.headers["Hlekkr-Signature"], request.body)
    assert not signing.verify("whsec_wrong", request.headers["Hlekkr-Signature"], request.body)
    body = request.json()
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == str(delivery.event_id)
    assert body["type"] == "analysis.completed"
    assert body["data"]["trust_score"] == 82 and body["data"]["verdict"] == "likely_authentic"


def test_review_decided_is_delivered_as_review_completed(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        publish(
            "review.decided",
            {
                "review_item_id": "x",
                "analysis_id": "y",
                "media_id": "z",
                "owner_id": client_a.pk,
                "verdict": "manipulated",
            },
        )
    assert receiver.requests[0].json()["type"] == "review.completed"
    assert receiver.requests[0].headers["Hlekkr-Event"] == "review.completed"


def test_only_the_owners_subscribed_active_endpoints_get_a_delivery(
    endpoint: WebhookEndpoint, client_a: Any, client_b: Any, receiver: Any
) -> None:
    services.webhook_endpoint_create(owner=client_b, url=receiver.url, events=["analysis.completed"])
    _failed_only, _ = services.webhook_endpoint_create(owner=client_a, url=receiver.url, events=["analysis.failed"])
    off, _ = services.webhook_endpoint_create(owner=client_a, url=receiver.url, events=["analysis.completed"])
    WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=False)
    publish("analysis.completed", _completed(client_a))
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [endpoint.pk]


def test_a_rolled_back_event_leaves_no_delivery(endpoint: WebhookEndpoint, client_a: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        publish("analysis.completed", _completed(client_a))
        raise RuntimeError("the analysis failed to commit")
    assert not WebhookDelivery.objects.exists()


def test_the_same_event_published_twice_is_delivered_once(endpoint: WebhookEndpoint, client_a: Any) -> None:
    publish("analysis.completed", _completed(client_a))
    publish("analysis.completed", _completed(client_a))
    publish("analysis.completed", _completed(client_a, analysis_id=str(uuid.uuid4())))
    assert WebhookDelivery.objects.count() == 2


def test_a_failed_attempt_is_retried_with_backoff(endpoint: WebhookEndpoint, client_a: Any, receiver: Any) -> None:
    receiver.reply(500)
    publish("analysis.completed", _completed(client_a))
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    services.webhook_delivery_attempt(delivery_id=delivery.pk, now=now)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 500)
    assert delivery.last_error.startswith("HTTP 500")
    assert timedelta(seconds=23) <= delivery.next_attempt_at - now <= timedelta(seconds=37)
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk, now=now) is None  # not due yet
    receiver.reply(200)
    services.webhook_delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("succeeded", 2, "")
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_retry_delays_double_from_30_seconds_up_to_an_hour() -> None:
    for attempts, base in ((1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (20, 3600)):
        for _ in range(20):
            assert base * 0.8 <= services.retry_delay_s(attempts) <= base * 1.2


def test_a_connection_failure_is_recorded(endpoint: WebhookEndpoint, client_a: Any, receiver: Any) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/closed")
    publish("analysis.completed", _completed(client_a))
    delivery = services.webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert delivery is not None
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert "ConnectionRefusedError" in delivery.last_error


def test_a_redirect_to_metadata_is_recorded_and_never_connected(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.reply(302, {"Location": "http://169.254.169.254/latest/meta-data/iam/"})
    opened: list[str] = []
    real_open = ssrf.open_socket
    monkeypatch.setattr(ssrf, "open_socket", lambda t, timeout: opened.append(t.address) or real_open(t, timeout))  # type: ignore[func-returns-value]
    publish("analysis.completed", _completed(client_a))
    delivery = services.webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    assert delivery is not None and delivery.status == "failed"
    assert delivery.last_error.startswith("destination refused") and "metadata" in delivery.last_error
    assert opened == ["127.0.0.1"]


def test_a_delivery_past_its_24_hour_window_is_given_up(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any
) -> None:
    receiver.reply(503)
    publish("analysis.completed", _completed(client_a))
    delivery = WebhookDelivery.objects.get()
    later = delivery.expires_at + timedelta(seconds=1)
    services.webhook_delivery_attempt(delivery_id=delivery.pk, now=later)
    delivery.refresh_from_db()
    assert delivery.status == "given_up"
    assert AuditEvent.objects.filter(action="webhook.delivery_given_up", object_id=str(delivery.pk)).exists()


def test_an_endpoint_failing_for_24_hours_is_disabled_and_its_owner_told(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any, api_as: Any
) -> None:
    receiver.reply(500)
    publish("analysis.completed", _completed(client_a))
    publish("media.deleted", {"media_id": str(uuid.uuid4()), "owner_id": client_a.pk})
    first, second = WebhookDelivery.objects.order_by("event")
    start = timezone.now()
    services.webhook_delivery_attempt(delivery_id=first.pk, now=start)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == start and endpoint.is_active
    # 24 h of failures later (the delivery's own window renewed by a redelivery in between)
    WebhookDelivery.objects.filter(pk=second.pk).update(expires_at=start + timedelta(hours=48))
    services.webhook_delivery_attempt(delivery_id=second.pk, now=start + timedelta(hours=24, seconds=1))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "24 h" in endpoint.disabled_reason and "HTTP 500" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"given_up"}
    assert AuditEvent.objects.filter(action="webhook.endpoint_disabled", object_id=str(endpoint.pk)).exists()
    shown = api_as(client_a).get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert shown["is_active"] is False and shown["disabled_reason"] == endpoint.disabled_reason
    # A disabled endpoint gets no new deliveries until its owner enables it again.
    publish("analysis.completed", _completed(client_a, analysis_id=str(uuid.uuid4())))
    assert WebhookDelivery.objects.count() == 2
    enabled = api_as(client_a).post(f"/api/v1/webhooks/{endpoint.pk}/enable/")
    assert enabled.status_code == 200 and enabled.json()["is_active"] is True


def test_the_beat_task_sends_due_deliveries_and_skips_the_rest(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any
) -> None:
    publish("analysis.completed", _completed(client_a))
    later_id = str(uuid.uuid4())
    publish("analysis.completed", _completed(client_a, analysis_id=later_id))
    later = WebhookDelivery.objects.get(payload__analysis_id=later_id)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert webhook_dispatch_due_task() == 1
    assert len(receiver.requests) == 1
    assert webhook_dispatch_due_task() == 0


def test_redelivery_sends_the_same_event_again(endpoint: WebhookEndpoint, client_a: Any, receiver: Any) -> None:
    publish("analysis.completed", _completed(client_a))
    delivery = WebhookDelivery.objects.get()
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    services.webhook_delivery_redeliver(delivery=delivery, actor=None)
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    first, second = (r.json() for r in receiver.requests)
    assert first == second


def test_admin_lists_deliveries_and_redelivers(
    endpoint: WebhookEndpoint, client_a: Any, receiver: Any, admin_user: Any, client: Any
) -> None:
    publish("analysis.completed", _completed(client_a))
    delivery = WebhookDelivery.objects.get()
    client.force_login(admin_user)
    page = client.get("/admin/webhooks/webhookdelivery/")
    assert page.status_code == 200 and b"analysis.completed" in page.content
    endpoint_page = client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint_page.status_code == 200 and endpoint.secret.encode() not in endpoint_page.content
    response = client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="webhook.delivery_redelivered").exists()


def test_signatures_older_than_five_minutes_are_rejected_by_the_documented_check() -> None:
    body = json.dumps({"id": "e"}).encode()
    header = signing.header_value("whsec_x", body, timestamp=1_000_000)
    assert signing.verify("whsec_x", header, body, now=1_000_000 + 299)
    assert not signing.verify("whsec_x", header, body, now=1_000_000 + 301)
    assert not signing.verify("whsec_x", header, body + b" ", now=1_000_000)
    assert not signing.verify("whsec_x", "v1=abc", body)
