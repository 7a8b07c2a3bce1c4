"""The moderator API: who may call it, the happy path, and every refusal with its status and code."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from hlekkr.accounts.services import api_key_create
from review import services
from review.models import ItemStatus, ReviewAssignment

pytestmark = pytest.mark.django_db
BASE = "/api/v1/review"


def test_clients_and_anonymous_callers_are_kept_out(api, api_as, client_a, item_factory) -> None:
    item = item_factory()
    assert api.get(f"{BASE}/queue/").status_code == 401
    as_client = api_as(client_a)
    for method, path in [
        ("get", "queue/"),
        ("post", "next/"),
        ("get", f"items/{item.pk}/"),
        ("post", f"items/{item.pk}/claim/"),
        ("post", f"items/{item.pk}/decide/"),
    ]:
        response = getattr(as_client, method)(f"{BASE}/{path}", format="json")
        assert response.status_code == 403, path
        assert response.json()["code"] == "permission_denied"


def test_unknown_and_malformed_ids_are_404(api_as, senior) -> None:
    moderator_api = api_as(senior)
    for bad in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        for suffix in ("", "claim/"):
            method = moderator_api.get if not suffix else moderator_api.post
            response = method(f"{BASE}/items/{bad}/{suffix}")
            assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_api_keys_need_review_scopes(senior, item_factory) -> None:
    item_factory()
    read_only = api_key_create(user=senior, name="ro", scopes=["review:read"]).plaintext
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_only}")
    assert client.get(f"{BASE}/queue/").status_code == 200
    assert client.post(f"{BASE}/next/").status_code == 403
    media_only = api_key_create(user=senior, name="media", scopes=["media:read"]).plaintext
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {media_only}")
    assert client.get(f"{BASE}/queue/").status_code == 403


def test_a_moderator_takes_the_next_item_and_decides_it(api_as, senior, item_factory) -> None:
    item = item_factory(probability=0.85)
    moderator_api = api_as(senior)
    response = moderator_api.post(f"{BASE}/next/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(item.pk) and body["assignees"][0]["moderator"] == "senior"
    assert body["media"]["url"] and body["analysis"]["id"] == str(item.analysis_id)
    decided = moderator_api.post(
        f"{BASE}/items/{item.pk}/decide/",
        {"verdict": "manipulated", "confidence": 0.9, "notes": "Spliced."},
        format="json",
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "decided" and decided.json()["final_verdict"] == "manipulated"
    again = moderator_api.post(
        f"{BASE}/items/{item.pk}/decide/",
        {"verdict": "authentic", "confidence": 0.9, "notes": "second try"},
        format="json",
    )
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    claim = moderator_api.post(f"{BASE}/items/{item.pk}/claim/")
    assert claim.status_code == 409 and claim.json()["code"] == "item_decided"
    empty = moderator_api.post(f"{BASE}/next/")
    assert empty.status_code == 404 and empty.json()["code"] == "queue_empty"


def test_refusals_carry_clear_codes(api_as, senior, junior, lead, item_factory) -> None:
    critical = item_factory(priority="critical")
    normal = item_factory()
    junior_api, senior_api = api_as(junior), api_as(senior)
    r = junior_api.post(f"{BASE}/items/{critical.pk}/claim/")
    assert r.status_code == 403 and r.json()["code"] == "insufficient_seniority"
    r = senior_api.post(
        f"{BASE}/items/{normal.pk}/decide/", {"verdict": "manipulated", "confidence": 0.8}, format="json"
    )
    assert r.status_code == 403 and r.json()["code"] == "not_assigned"
    assert senior_api.post(f"{BASE}/items/{normal.pk}/claim/").status_code == 200
    ReviewAssignment.objects.filter(item=normal).update(lease_expires_at=timezone.now() - dt.timedelta(minutes=1))
    r = senior_api.post(
        f"{BASE}/items/{normal.pk}/decide/", {"verdict": "manipulated", "confidence": 0.8}, format="json"
    )
    assert r.status_code == 409 and r.json()["code"] == "lease_expired"
    r = senior_api.post(
        f"{BASE}/items/{normal.pk}/decide/", {"verdict": "fake", "confidence": 2, "extra": 1}, format="json"
    )
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    assert "extra" in r.json()["details"]["fields"]  # unknown fields are refused first
    r = senior_api.post(f"{BASE}/items/{normal.pk}/assign/", {"moderator": "junior"}, format="json")
    assert r.status_code == 403
    for _ in range(3):
        item_factory()
    for _ in range(3):
        assert junior_api.post(f"{BASE}/next/").status_code == 200
    r = junior_api.post(f"{BASE}/next/")
    assert r.status_code == 409 and r.json()["code"] == "at_capacity"


def test_a_lead_assigns_reassigns_and_takes_over(api_as, senior, junior, lead, item_factory) -> None:
    item = item_factory()
    lead_api = api_as(lead)
    r = lead_api.post(f"{BASE}/items/{item.pk}/assign/", {"moderator": "junior"}, format="json")
    assert r.status_code == 200 and [a["moderator"] for a in r.json()["assignees"]] == ["junior"]
    r = lead_api.post(f"{BASE}/items/{item.pk}/assign/", {"moderator": "senior"}, format="json")
    assert [a["moderator"] for a in r.json()["assignees"]] == ["senior"]
    r = lead_api.post(f"{BASE}/items/{item.pk}/assign/", {"moderator": "lead"}, format="json")
    assert [a["moderator"] for a in r.json()["assignees"]] == ["lead"]
    r = lead_api.post(f"{BASE}/items/{item.pk}/assign/", {"moderator": "nobody"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "unknown_moderator"


def test_release_and_escalate(api_as, senior, item_factory) -> None:
    item = item_factory()
    senior_api = api_as(senior)
    senior_api.post(f"{BASE}/items/{item.pk}/claim/")
    r = senior_api.post(f"{BASE}/items/{item.pk}/release/")
    assert r.status_code == 200 and r.json()["status"] == ItemStatus.PENDING
    r = senior_api.post(f"{BASE}/items/{item.pk}/release/")
    assert r.status_code == 409 and r.json()["code"] == "not_assigned"
    senior_api.post(f"{BASE}/items/{item.pk}/claim/")
    r = senior_api.post(
        f"{BASE}/items/{item.pk}/escalate/", {"note": "Voice clone? Needs audio expert."}, format="json"
    )
    assert r.status_code == 200 and r.json()["status"] == "escalated"


def test_the_queue_filters_paginates_and_keeps_its_query_count(
    api_as, senior, item_factory, django_assert_max_num_queries
) -> None:
    for priority in ("critical", "high", "low", "low"):
        item_factory(priority=priority, expertise=["image", "face_manipulation"] if priority == "high" else ["image"])
    item_factory(priority="medium", due_in=dt.timedelta(minutes=-10))
    senior_api = api_as(senior)
    with django_assert_max_num_queries(8):
        r = senior_api.get(f"{BASE}/queue/?page_size=2")
    body = r.json()
    assert len(body["results"]) == 2 and body["next"] and body["depth"]["total"] == 5
    assert body["results"][0]["overdue"] and body["depth"]["overdue"] == 1
    assert [i["priority"] for i in senior_api.get(f"{BASE}/queue/?priority=low").json()["results"]] == ["low", "low"]
    assert len(senior_api.get(f"{BASE}/queue/?expertise=face_manipulation").json()["results"]) == 1
    assert len(senior_api.get(f"{BASE}/queue/?overdue=true").json()["results"]) == 1
    r = senior_api.get(f"{BASE}/queue/?priority=urgent")
    assert r.status_code == 400 and r.json()["code"] == "validation_error"
    for _ in range(10):
        item_factory()
    with django_assert_max_num_queries(8):
        assert senior_api.get(f"{BASE}/queue/?page_size=20").status_code == 200


def test_reading_a_held_item_renews_the_lease_and_shows_the_renewed_one(api_as, senior, item_factory) -> None:
    item = item_factory()
    senior_api = api_as(senior)
    assert senior_api.post(f"{BASE}/items/{item.pk}/claim/").status_code == 200
    soon = timezone.now() + dt.timedelta(seconds=30)
    ReviewAssignment.objects.filter(item=item).update(lease_expires_at=soon)
    body = senior_api.get(f"{BASE}/items/{item.pk}/").json()
    stored = ReviewAssignment.objects.get(item=item).lease_expires_at
    assert stored > soon + dt.timedelta(minutes=1)
    assert body["assignees"][0]["lease_expires_at"] == stored.isoformat().replace("+00:00", "Z")


def test_deciding_after_the_expiry_task_returned_the_slot_is_lease_expired(api_as, senior, item_factory) -> None:
    item = item_factory()
    senior_api = api_as(senior)
    assert senior_api.post(f"{BASE}/items/{item.pk}/claim/").status_code == 200
    ReviewAssignment.objects.filter(item=item).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.review_leases_expire() == 1
    r = senior_api.post(
        f"{BASE}/items/{item.pk}/decide/", {"verdict": "manipulated", "confidence": 0.8, "notes": "x"}, format="json"
    )
    assert r.status_code == 409 and r.json()["code"] == "lease_expired"
    assert not item.decisions.exists()
    # Reading the item does not bring the lapsed lease back.
    assert senior_api.get(f"{BASE}/items/{item.pk}/").json()["assignees"] == []
