"""/api/v1/webhooks/: registration with the SSRF check, secret shown once, owner-only access."""

from __future__ import annotations

from typing import Any

import pytest

from hlekkr.accounts.services import api_key_create
from hlekkr.audit.models import AuditEvent
from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint
from hlekkr.webhooks.services import MAX_ENDPOINTS_PER_OWNER

URL = "/api/v1/webhooks/"
PUBLIC = "https://hooks.example.test/hlekkr"


@pytest.fixture
def public_dns(fake_dns: Any) -> Any:
    # "localhost" answers as /etc/hosts does; nothing here is resolved for real.
    return fake_dns(
        {
            "hooks.example.test": ["8.8.8.8"],
            "internal.example.test": ["10.20.30.40"],
            "localhost": ["127.0.0.1", "::1"],
        }
    )


def _register(client: Any, url: str = PUBLIC, events: list[str] | None = None) -> Any:
    return client.post(URL, {"url": url, "events": events or ["analysis.completed"]}, format="json")


def test_registering_returns_the_secret_once(api_as: Any, client_a: Any, public_dns: Any) -> None:
    client = api_as(client_a)
    response = _register(client, events=["analysis.completed", "review.completed", "analysis.completed"])
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["events"] == ["analysis.completed", "review.completed"]
    assert body["is_active"] is True
    again = client.get(f"{URL}{body['id']}/").json()
    assert "secret" not in again
    assert all("secret" not in item for item in client.get(URL).json()["results"])
    event = AuditEvent.objects.get(action="webhook.endpoint_created")
    assert body["secret"] not in str(event.payload)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost/x",
        "http://0.0.0.0/x",
        "file:///etc/passwd",
        "https://internal.example.test/hook",
        "https://unknown.example.test/hook",
    ],
)
def test_it_refuses_urls_that_lead_inside(api_as: Any, client_a: Any, public_dns: Any, url: str, settings: Any) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = False
    response = _register(api_as(client_a), url=url)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "webhook_url_forbidden"
    assert set(response.json()) == {"code", "message", "details"}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": PUBLIC, "events": ["analysis.exploded"]}, "events"),
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC}, "events"),
        ({"events": ["analysis.completed"]}, "url"),
        ({"url": PUBLIC, "events": ["analysis.completed"], "secret": "mine"}, "secret"),
    ],
)
def test_it_rejects_bad_registrations(api_as: Any, client_a: Any, public_dns: Any, payload: Any, field: str) -> None:
    response = api_as(client_a).post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]["fields"]


def test_it_limits_endpoints_per_account(api_as: Any, client_a: Any, public_dns: Any) -> None:
    client = api_as(client_a)
    for _ in range(MAX_ENDPOINTS_PER_OWNER):
        assert _register(client).status_code == 201
    response = _register(client)
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_limit_reached"


def test_owners_see_only_their_endpoints(
    api_as: Any, client_a: Any, client_b: Any, public_dns: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(3):
        _register(api_as(client_a))
    _register(api_as(client_b))
    client = api_as(client_a)
    with django_assert_max_num_queries(4):
        body = client.get(URL).json()
    assert len(body["results"]) == 3


def test_another_owners_endpoint_is_404_everywhere(api_as: Any, client_a: Any, outsider: Any, public_dns: Any) -> None:
    endpoint_id = _register(api_as(client_a)).json()["id"]
    other = api_as(outsider)
    for method, path in (
        ("get", f"{URL}{endpoint_id}/"),
        ("delete", f"{URL}{endpoint_id}/"),
        ("get", f"{URL}{endpoint_id}/deliveries/"),
        ("post", f"{URL}{endpoint_id}/enable/"),
    ):
        response = getattr(other, method)(path)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "webhook_not_found"
    assert WebhookEndpoint.objects.filter(pk=endpoint_id).exists()


def test_deleting_an_endpoint_removes_it_and_is_audited(api_as: Any, client_a: Any, public_dns: Any) -> None:
    client = api_as(client_a)
    endpoint_id = _register(client).json()["id"]
    assert client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert client.get(f"{URL}{endpoint_id}/").status_code == 404
    assert AuditEvent.objects.filter(action="webhook.endpoint_deleted", object_id=endpoint_id).exists()


def test_the_delivery_list_shows_status_and_last_error(api_as: Any, client_a: Any, public_dns: Any) -> None:
    from django.utils import timezone

    client = api_as(client_a)
    endpoint = WebhookEndpoint.objects.get(pk=_register(client).json()["id"])
    now = timezone.now()
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="analysis.completed",
        event_id="00000000-0000-0000-0000-000000000001",
        payload={},
        status="failed",
        attempts=2,
        last_error="HTTP 500: boom",
        last_status_code=500,
        next_attempt_at=now,
        expires_at=now,
    )
    results = client.get(f"{URL}{endpoint.pk}/deliveries/").json()["results"]
    assert [(r["status"], r["last_error"], r["last_status_code"]) for r in results] == [
        ("failed", "HTTP 500: boom", 500)
    ]


def test_api_keys_need_media_write_to_register(client_a: Any, public_dns: Any) -> None:
    from rest_framework.test import APIClient

    issued = api_key_create(user=client_a, name="reader", scopes=["media:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert client.get(URL).status_code == 200
    response = _register(client)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anonymous_callers_are_refused(api: Any, db: Any) -> None:
    response = api.get(URL)
    assert response.status_code == 401


def test_enabling_an_endpoint_whose_host_now_leads_inside_is_refused(
    api_as: Any, client_a: Any, fake_dns: Any, settings: Any
) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = False
    endpoint = WebhookEndpoint.objects.create(
        owner=client_a, url="https://moved.example.test/hook", events=["analysis.completed"], secret="s" * 32
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, disabled_reason="failing")
    fake_dns({"moved.example.test": ["10.1.2.3"]})  # DNS now answers with a private address
    response = api_as(client_a).post(f"{URL}{endpoint.pk}/enable/")
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_forbidden"
    endpoint.refresh_from_db()
    assert endpoint.is_active is False


def test_deleting_endpoints_in_admin_is_audited_like_the_api(client: Any, admin_user: Any, client_a: Any) -> None:
    endpoints = [
        WebhookEndpoint.objects.create(owner=client_a, url=f"https://h{i}.example.test/x?token=t", secret="s" * 32)
        for i in range(2)
    ]
    client.force_login(admin_user)
    response = client.post(f"/admin/webhooks/webhookendpoint/{endpoints[0].pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = client.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "delete_selected", "_selected_action": [str(endpoints[1].pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    events = AuditEvent.objects.filter(action="webhook.endpoint_deleted")
    assert events.count() == 2
    assert all("token" not in str(e.payload) for e in events)
