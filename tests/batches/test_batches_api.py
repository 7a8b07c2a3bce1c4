"""POST /api/v1/batches/ and GET /api/v1/batches/{id}/, called as a client would (Celery eager: the work runs in
the after-commit callbacks the tests execute)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from fetch_server import FetchServer
from PIL import Image

from batches.models import Batch, BatchItem
from hlekkr import events
from hlekkr.audit.models import AuditEvent
from media.models import MediaItem, UrlFetch

BATCHES = "/api/v1/batches/"


def noise_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray((rng.random((96, 128, 3)) * 255).astype("uint8")).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def completed_batches() -> Any:
    seen: list[dict[str, Any]] = []

    def record(event: str, payload: dict[str, Any]) -> None:
        seen.append(payload)

    events.subscribe(events.BATCH_COMPLETED, record, after_commit=True)
    yield seen
    events.unsubscribe(events.BATCH_COMPLETED, record)


@pytest.fixture
def own_media(api_as: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """own_media(user, seed, analyse=True) -> id of an uploaded item (analysed now unless analyse=False)."""

    def make(user: Any, seed: int, *, analyse: bool = True) -> str:
        file = SimpleUploadedFile(f"p{seed}.jpg", noise_jpeg(seed), content_type="image/jpeg")
        with django_capture_on_commit_callbacks(execute=analyse):
            response = api_as(user).post("/api/v1/media/", {"file": file}, format="multipart")
        assert response.status_code == 201, response.content
        return str(response.json()["id"])

    return make


def create(api_as: Any, user: Any, items: list[Any], capture: Any, *, execute: bool = True) -> Any:
    with capture(execute=execute):
        return api_as(user).post(BATCHES, {"items": items}, format="json")


# --- what works ---------------------------------------------------------------------------------------------
def test_a_batch_of_analysed_items_completes_with_their_verdicts_and_one_event(
    api_as: Any, client_a: Any, own_media: Any, django_capture_on_commit_callbacks: Any, completed_batches: Any
) -> None:
    ids = [own_media(client_a, seed) for seed in (1, 2)]

    response = create(api_as, client_a, [{"media_id": i} for i in ids], django_capture_on_commit_callbacks)

    assert response.status_code == 201, response.content
    body = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["status"] == "completed" and body["total"] == 2 and body["progress"] == 1.0
    assert body["counts"] == {"waiting": 0, "running": 0, "done": 2, "failed": 0}
    for row, media_id in zip(body["items"], ids, strict=True):
        item = MediaItem.objects.get(pk=media_id)
        assert row["media_id"] == media_id and row["state"] == "done"
        assert row["verdict"] == item.verdict and row["trust_score"] == item.trust_score
    assert completed_batches == [{"batch_id": body["id"], "owner_id": client_a.pk, "total": 2, "done": 2, "failed": 0}]


def test_a_batch_analyses_links_on_the_batch_queue_and_reports_refusals(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    good = fetch_server.serve("/a.jpg", noise_jpeg(3))
    empty_page = fetch_server.serve("/empty.html", b"<html><body>words</body></html>", "text/html")

    response = create(api_as, client_a, [{"url": good}, {"url": empty_page}], django_capture_on_commit_callbacks)

    body = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["status"] == "completed"
    first, second = body["items"]
    assert first["state"] == "done" and first["url"] == good and first["verdict"]
    assert MediaItem.objects.get(pk=first["media_id"]).analysis_status == "completed"
    assert second["state"] == "failed" and second["error"] == "page_without_media"
    assert set(UrlFetch.objects.values_list("queue", flat=True)) == {"batch"}
    from analysis.models import Analysis

    assert list(Analysis.objects.values_list("queue", flat=True)) == ["batch"]


def test_a_link_to_bytes_already_analysed_takes_that_items_verdict(
    api_as: Any, client_a: Any, own_media: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    media_id = own_media(client_a, 4)
    url = fetch_server.serve("/copy.jpg", noise_jpeg(4))

    response = create(api_as, client_a, [{"url": url}], django_capture_on_commit_callbacks)

    row = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()["items"][0]
    assert row["state"] == "done" and row["media_id"] == media_id


def test_one_client_runs_at_most_its_cap_and_the_rest_waits(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.HLEKKR_BATCH_CONCURRENCY_PER_CLIENT = 2
    urls = [fetch_server.serve(f"/{n}.jpg", noise_jpeg(10 + n)) for n in range(5)]

    response = create(api_as, client_a, [{"url": u} for u in urls], django_capture_on_commit_callbacks, execute=False)
    from batches.services import batch_dispatch

    with django_capture_on_commit_callbacks(execute=False):
        batch_dispatch(owner_id=client_a.pk)  # what the after-commit callback does

    body = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["status"] == "running"
    assert body["counts"] == {"waiting": 3, "running": 2, "done": 0, "failed": 0}
    assert UrlFetch.objects.count() == 2  # the other three are not even fetched yet


def test_finishing_an_item_frees_its_slot_for_the_next(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.HLEKKR_BATCH_CONCURRENCY_PER_CLIENT = 1
    urls = [fetch_server.serve(f"/{n}.jpg", noise_jpeg(20 + n)) for n in range(3)]

    response = create(api_as, client_a, [{"url": u} for u in urls], django_capture_on_commit_callbacks)

    body = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["status"] == "completed" and body["counts"]["done"] == 3
    assert fetch_server.requests == ["/0.jpg", "/1.jpg", "/2.jpg"]  # one after another, in order


def test_the_webhook_gets_one_batch_completed(
    api_as: Any, client_a: Any, own_media: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(
        owner=client_a, url="https://hooks.example.org/in", events=["batch.completed"], secret="s" * 32
    )
    media_id = own_media(client_a, 5)
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(client_a).post(BATCHES, {"items": [{"media_id": media_id}]}, format="json")
        from batches.services import batch_dispatch, batches_reconcile

        batch_dispatch(owner_id=client_a.pk)
        batch_dispatch(owner_id=client_a.pk)
        batches_reconcile()

    deliveries = list(WebhookDelivery.objects.filter(event="batch.completed"))
    assert len(deliveries) == 1
    assert deliveries[0].payload["batch_id"] == response.json()["id"]
    assert AuditEvent.objects.filter(action="batch.completed").count() == 1


def test_the_reconciler_settles_an_item_whose_event_was_missed(
    api_as: Any, client_a: Any, own_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from batches.services import batch_dispatch, batches_reconcile

    media_id = own_media(client_a, 6, analyse=False)  # its analysis is queued, not run
    response = create(api_as, client_a, [{"media_id": media_id}], django_capture_on_commit_callbacks, execute=False)
    with django_capture_on_commit_callbacks(execute=False):
        batch_dispatch(owner_id=client_a.pk)
    assert BatchItem.objects.get().state == "running"
    MediaItem.objects.filter(pk=media_id).update(analysis_status="completed", verdict="suspicious", trust_score=50)

    with django_capture_on_commit_callbacks(execute=True):
        batches_reconcile()

    body = api_as(client_a).get(f"{BATCHES}{response.json()['id']}/").json()
    assert body["status"] == "completed" and body["items"][0]["verdict"] == "suspicious"


# --- bad input: one clear 400 naming the offending entries ------------------------------------------------------
def test_duplicates_unknown_and_other_clients_ids_are_named_in_one_400(
    api_as: Any, client_a: Any, client_b: Any, own_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mine = own_media(client_a, 7)
    theirs = own_media(client_b, 8)
    items = [
        {"media_id": mine},
        {"media_id": mine},
        {"media_id": str(uuid.uuid4())},
        {"media_id": theirs},
        {"media_id": "not-an-id"},
        {"url": "ftp://example.org/x.jpg"},
        {"url": "https://example.org/a.jpg"},
        {"url": "https://example.org/a.jpg"},
        {"media_id": mine, "url": "https://example.org/b.jpg"},
        "just a string",
    ]

    response = create(api_as, client_a, items, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "batch_invalid"
    named = [(e["index"], e["code"]) for e in body["details"]["entries"]]
    assert named == [
        (1, "duplicate_entry"),
        (2, "unknown_media"),
        (3, "unknown_media"),
        (4, "unknown_media"),
        (5, "url_scheme_not_allowed"),
        (7, "duplicate_entry"),
        (8, "invalid_entry"),
        (9, "invalid_entry"),
    ]
    assert body["details"]["entries"][0]["duplicate_of"] == 0
    assert Batch.objects.count() == 0 and UrlFetch.objects.count() == 0


def test_more_than_500_items_is_refused(api_as: Any, client_a: Any, django_capture_on_commit_callbacks: Any) -> None:
    response = create(api_as, client_a, [{"media_id": str(uuid.uuid4())}] * 501, django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json()["code"] == "batch_too_large"
    assert response.json()["details"] == {"max_items": 500, "count": 501}


@pytest.mark.parametrize("body", [{"items": []}, {}, {"items": "x"}, {"items": [], "extra": 1}])
def test_an_empty_or_malformed_batch_is_refused(api_as: Any, client_a: Any, body: dict[str, Any]) -> None:
    response = api_as(client_a).post(BATCHES, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] in ("batch_empty", "validation_error")


def test_an_item_not_stored_is_named(
    api_as: Any, client_a: Any, own_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    media_id = own_media(client_a, 9)
    MediaItem.objects.filter(pk=media_id).update(status="rejected")

    response = create(api_as, client_a, [{"media_id": media_id}], django_capture_on_commit_callbacks)

    assert response.status_code == 400
    assert response.json()["details"]["entries"][0]["code"] == "media_not_stored"


def test_another_client_cannot_read_a_batch(
    api_as: Any, client_a: Any, client_b: Any, own_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    media_id = own_media(client_a, 10)
    batch_id = create(api_as, client_a, [{"media_id": media_id}], django_capture_on_commit_callbacks).json()["id"]

    response = api_as(client_b).get(f"{BATCHES}{batch_id}/")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_batches_have_their_own_rate_limit_group() -> None:
    from batches.api.views import BatchCollectionView
    from ratelimit.policies import DEFAULT_POLICIES

    assert BatchCollectionView.ratelimit_group == "batch"
    assert {rate for group, _, rate, _, _ in DEFAULT_POLICIES if group == "batch"} == {"10/m", "100/h"}
