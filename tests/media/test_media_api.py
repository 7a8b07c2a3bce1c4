"""The read and delete side of the media API: owner scope, filters, cursor pagination, query counts, ETag and
the server-side detail cache, download URLs, detail providers and media.deleted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from media_factories import jpeg_bytes, stored_files, wav_bytes

from hlekkr import events
from hlekkr.audit.models import AuditEvent
from media import extensions
from media.models import MediaItem, MediaStatus
from media.services import media_item_record_final_verdict, media_item_record_outcome


@pytest.fixture
def item_a(client_a: Any, upload: Any) -> dict[str, Any]:
    response = upload(client_a, "a.jpg", jpeg_bytes(101), "image/jpeg")
    assert response.status_code == 201
    return dict(response.json())


def make_items(owner: Any, count: int) -> list[MediaItem]:
    """Rows straight in the database: list tests need many items, not many uploads."""
    items = [
        MediaItem(owner=owner, kind="image", mime_type="image/jpeg", size=10, sha256=f"{i:064x}", status="stored")
        for i in range(count)
    ]
    return MediaItem.objects.bulk_create(items)


# --- outsiders ---------------------------------------------------------------------------------------------
def test_an_outsider_gets_404_on_every_route_that_takes_an_id(
    client_a: Any, outsider: Any, api_as: Any, item_a: dict[str, Any]
) -> None:
    owner_api, other = api_as(client_a), api_as(outsider)
    started = owner_api.post(
        "/api/v1/media/uploads/", {"filename": "a.wav", "size": 100, "content_type": "audio/wav"}, format="json"
    ).json()
    media_id, upload_id = item_a["id"], started["upload_id"]
    for method, path, body in [
        ("get", f"/api/v1/media/{media_id}/", None),
        ("get", f"/api/v1/media/{media_id}/?include_details=true", None),
        ("delete", f"/api/v1/media/{media_id}/", None),
        ("get", f"/api/v1/media/{started['media_id']}/", None),
        ("get", f"/api/v1/media/uploads/{upload_id}/", None),
        ("post", f"/api/v1/media/uploads/{upload_id}/complete/", {"parts": [{"part_number": 1, "etag": "x"}]}),
        ("delete", f"/api/v1/media/uploads/{upload_id}/", None),
    ]:
        response = getattr(other, method)(path, body, format="json") if body else getattr(other, method)(path)
        assert response.status_code == 404, (method, path, response.content)
        assert response.json()["code"] == "not_found"
    assert owner_api.get(f"/api/v1/media/{media_id}/").status_code == 200
    assert MediaItem.objects.get(pk=media_id).status == MediaStatus.STORED


def test_the_list_shows_only_own_items(client_a: Any, client_b: Any, api_as: Any, item_a: dict[str, Any]) -> None:
    mine = api_as(client_a).get("/api/v1/media/").json()["results"]
    theirs = api_as(client_b).get("/api/v1/media/").json()["results"]
    assert [row["id"] for row in mine] == [item_a["id"]]
    assert theirs == []


def test_anonymous_callers_get_401(api: Any, item_a: dict[str, Any]) -> None:
    assert api.get("/api/v1/media/").status_code == 401
    assert api.get(f"/api/v1/media/{item_a['id']}/").status_code == 401


def test_api_keys_need_the_media_scopes(client_a: Any, item_a: dict[str, Any]) -> None:
    from rest_framework.test import APIClient

    from hlekkr.accounts.services import api_key_create

    issued = api_key_create(user=client_a, name="reader", scopes=["media:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert client.get(f"/api/v1/media/{item_a['id']}/").status_code == 200
    assert client.delete(f"/api/v1/media/{item_a['id']}/").status_code == 403


# --- list --------------------------------------------------------------------------------------------------
def test_list_rows_are_light_and_newest_first(client_a: Any, api_as: Any, upload: Any) -> None:
    first = upload(client_a, "1.jpg", jpeg_bytes(1), "image/jpeg").json()
    second = upload(client_a, "2.wav", wav_bytes(), "audio/wav").json()
    rows = api_as(client_a).get("/api/v1/media/").json()["results"]
    assert [r["id"] for r in rows] == [second["id"], first["id"]]
    assert "download_url" not in rows[0] and "sha256" not in rows[0]


def test_list_filters(client_a: Any, api_as: Any) -> None:
    items = make_items(client_a, 4)
    MediaItem.objects.filter(pk=items[0].pk).update(kind="audio", trust_score=90, verdict="likely_authentic")
    MediaItem.objects.filter(pk=items[1].pk).update(trust_score=50, verdict="suspicious")
    MediaItem.objects.filter(pk=items[2].pk).update(
        trust_score=20, verdict="likely_manipulated", final_verdict="likely_authentic"
    )
    MediaItem.objects.filter(pk=items[3].pk).update(status="rejected", created_at=timezone.now() - timedelta(days=3))
    api = api_as(client_a)

    def ids(query: str) -> set[str]:
        response = api.get(f"/api/v1/media/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("kind=audio") == {str(items[0].pk)}
    assert ids("status=rejected") == {str(items[3].pk)}
    assert ids("trust_min=40&trust_max=95") == {str(items[0].pk), str(items[1].pk)}
    assert ids("verdict=likely_authentic") == {str(items[0].pk), str(items[2].pk)}  # the human verdict counts
    assert ids("verdict=likely_manipulated") == set()
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert str(items[3].pk) not in ids(f"created_after={since}")
    assert ids(f"created_before={since}") == {str(items[3].pk)}


def test_list_refuses_bad_filters(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    for query in ["kind=document", "trust_min=101", "trust_min=80&trust_max=20", "created_after=yesterday", "x=1"]:
        response = api.get(f"/api/v1/media/?{query}")
        assert response.status_code == 400, query
        assert response.json()["code"] == "validation_error"


def test_list_never_shows_deleted_items(client_a: Any, api_as: Any) -> None:
    items = make_items(client_a, 2)
    MediaItem.objects.filter(pk=items[0].pk).update(status="deleted")
    rows = api_as(client_a).get("/api/v1/media/").json()["results"]
    assert [r["id"] for r in rows] == [str(items[1].pk)]


def test_the_list_is_cursor_paginated(client_a: Any, api_as: Any) -> None:
    make_items(client_a, 7)
    api = api_as(client_a)
    page = api.get("/api/v1/media/?page_size=3").json()
    seen = [r["id"] for r in page["results"]]
    while page["next"]:
        page = api.get(urlsplit(page["next"]).path + "?" + urlsplit(page["next"]).query).json()
        seen += [r["id"] for r in page["results"]]
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize("count", [1, 25, 100])
def test_the_list_query_count_does_not_grow_with_page_size(
    client_a: Any, api_as: Any, django_assert_max_num_queries: Any, count: int
) -> None:
    make_items(client_a, count)
    api = api_as(client_a)
    with django_assert_max_num_queries(2):  # the JWT user, one page of items
        response = api.get(f"/api/v1/media/?page_size={count}")
    assert len(response.json()["results"]) == count


# --- detail, ETag, cache -----------------------------------------------------------------------------------
def test_the_detail_carries_the_documented_fields(client_a: Any, api_as: Any, item_a: dict[str, Any]) -> None:
    body = api_as(client_a).get(f"/api/v1/media/{item_a['id']}/").json()
    for name in [
        "id", "kind", "mime_type", "size", "sha256", "original_filename", "status", "created_at",
        "trust_score", "verdict", "final_verdict", "analysis_status", "download_url",
    ]:  # fmt: skip
        assert name in body, name
    assert body["download_url"].startswith("http://testserver/api/v1/files/")


def test_the_download_url_serves_the_bytes_and_forged_tokens_are_404(client_a: Any, api_as: Any, upload: Any) -> None:
    data = jpeg_bytes(202)
    created = upload(client_a, "a.jpg", data, "image/jpeg").json()
    url = urlsplit(api_as(client_a).get(f"/api/v1/media/{created['id']}/").json()["download_url"]).path
    response = Client().get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == data  # type: ignore[attr-defined]
    forged = Client().get(url[:-2] + "x/")
    assert forged.status_code == 404 and forged.json()["code"] == "not_found"


def test_a_download_url_of_a_deleted_item_is_404(client_a: Any, api_as: Any, upload: Any) -> None:
    created = upload(client_a, "a.jpg", jpeg_bytes(203), "image/jpeg").json()
    api = api_as(client_a)
    url = urlsplit(api.get(f"/api/v1/media/{created['id']}/").json()["download_url"]).path
    assert api.delete(f"/api/v1/media/{created['id']}/").status_code == 204
    response = Client().get(url)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_detail_has_an_etag_and_if_none_match_gets_304(
    client_a: Any, api_as: Any, item_a: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    api = api_as(client_a)
    first = api.get(f"/api/v1/media/{item_a['id']}/")
    etag = first["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    with django_assert_max_num_queries(2):
        again = api.get(f"/api/v1/media/{item_a['id']}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    details = api.get(f"/api/v1/media/{item_a['id']}/?include_details=true")
    assert details["ETag"] != etag


def test_the_etag_changes_when_an_outcome_is_recorded(client_a: Any, api_as: Any, item_a: dict[str, Any]) -> None:
    api = api_as(client_a)
    etag = api.get(f"/api/v1/media/{item_a['id']}/")["ETag"]
    media_item_record_outcome(
        media_id=item_a["id"], analysis_status="completed", trust_score=83, verdict="likely_authentic"
    )
    response = api.get(f"/api/v1/media/{item_a['id']}/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag
    assert response.json()["trust_score"] == 83 and response.json()["verdict"] == "likely_authentic"
    media_item_record_final_verdict(media_id=item_a["id"], verdict="likely_manipulated")
    assert api.get(f"/api/v1/media/{item_a['id']}/").json()["final_verdict"] == "likely_manipulated"
    assert MediaItem.objects.get(pk=item_a["id"]).outcome_version == 2


def test_the_rendered_detail_is_cached_and_keyed_by_outcome_version(
    client_a: Any, api_as: Any, item_a: dict[str, Any]
) -> None:
    calls: list[bool] = []

    def provider(item: MediaItem, *, include_details: bool) -> dict[str, Any]:
        calls.append(include_details)
        return {"analysis": {"runs": len(calls), "detectors": [] if include_details else None}}

    extensions.register_detail_provider(provider)
    cache.clear()  # the upload response rendered the detail before this provider existed
    api = api_as(client_a)
    path = f"/api/v1/media/{item_a['id']}/"
    assert api.get(path).json()["analysis"]["runs"] == 1
    assert api.get(path).json()["analysis"]["runs"] == 1  # served from the cache
    assert api.get(path + "?include_details=true").json()["analysis"]["detectors"] == []
    assert calls == [False, True]
    media_item_record_outcome(media_id=item_a["id"], analysis_status="running")
    assert api.get(path).json()["analysis"]["runs"] == 3  # new outcome version: rendered again
    assert calls == [False, True, False]


def test_the_detail_query_count_is_pinned(
    client_a: Any, api_as: Any, item_a: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    api = api_as(client_a)
    with django_assert_max_num_queries(2):  # the JWT user, the item; the body comes from the renderer/cache
        assert api.get(f"/api/v1/media/{item_a['id']}/").status_code == 200


def test_providers_are_not_called_for_list_rows(client_a: Any, api_as: Any, item_a: dict[str, Any]) -> None:
    def provider(item: MediaItem, *, include_details: bool) -> dict[str, Any]:
        raise AssertionError("list rows must stay light")

    extensions.register_detail_provider(provider)
    assert api_as(client_a).get("/api/v1/media/").status_code == 200


# --- delete ------------------------------------------------------------------------------------------------
def test_delete_removes_the_item_its_objects_and_artifacts_and_publishes(
    client_a: Any, api_as: Any, item_a: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from media import storage

    item = MediaItem.objects.get(pk=item_a["id"])
    storage.artifact_save(item, "ela.png", b"heatmap")
    received: list[dict[str, Any]] = []
    events.subscribe(events.MEDIA_DELETED, lambda e, p: received.append(p), after_commit=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(client_a).delete(f"/api/v1/media/{item.id}/")
    assert response.status_code == 204
    assert stored_files() == []
    assert MediaItem.objects.get(pk=item.pk).status == MediaStatus.DELETED
    assert received == [{"media_id": str(item.id), "owner_id": client_a.pk}]
    assert AuditEvent.objects.filter(action="media.deleted", object_id=str(item.id)).count() == 1
    assert api_as(client_a).get(f"/api/v1/media/{item.id}/").status_code == 404
    assert api_as(client_a).delete(f"/api/v1/media/{item.id}/").status_code == 404


def test_recording_an_outcome_for_an_unknown_item_is_404(db: Any) -> None:
    import uuid

    from hlekkr.exceptions import NotFound

    with pytest.raises(NotFound):
        media_item_record_outcome(media_id=uuid.uuid4(), analysis_status="completed")
