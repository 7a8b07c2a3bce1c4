"""The probe's smaller findings (issue 14, point 4): strict ids on review routes, 405 before scopes, a malformed
cursor is 400, and download URLs live as long as the detail body says."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from hlekkr.accounts.models import User
from hlekkr.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def _key_client(user: User, scopes: list[str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(user=user, name='t', scopes=scopes).plaintext}")
    return client


@pytest.fixture
def review_item(stored_media: Any) -> Any:
    from analysis.models import Analysis
    from review.models import ReviewItem

    analysis = Analysis.objects.create(media=stored_media, run_number=1, status="completed", trust_score=10)
    return ReviewItem.objects.create(analysis=analysis, media=stored_media, priority="high", due_at=analysis.created_at)


def test_review_item_routes_refuse_non_canonical_uuid_spellings(review_item: Any, moderator: User, api_as: Any) -> None:
    client = api_as(moderator)
    canonical = str(review_item.pk)
    assert client.get(f"/api/v1/review/items/{canonical}/").status_code == 200
    for spelling in (
        f"urn:uuid:{canonical}",
        "{" + canonical + "}",
        canonical.replace("-", ""),
        canonical.upper(),
    ):
        for suffix in ("", "claim/"):
            method = client.post if suffix else client.get
            response = method(f"/api/v1/review/items/{spelling}/{suffix}")
            assert response.status_code == 404, (spelling, suffix, response.status_code)
            assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "method", "scopes"),
    [
        ("/api/v1/media/", "put", ["media:read", "media:write"]),
        ("/api/v1/media/", "patch", ["media:read"]),
        ("/api/v1/auth/me/", "delete", ["media:read"]),
        ("/api/v1/review/queue/", "post", ["review:read"]),
        ("/api/v1/webhooks/", "put", ["media:write"]),
    ],
)
def test_an_api_key_gets_405_for_a_method_the_route_does_not_have(
    path: str, method: str, scopes: list[str], moderator: User, client_a: User
) -> None:
    user = moderator if "review" in path else client_a
    response = getattr(_key_client(user, scopes), method)(path, data={}, format="json")
    assert response.status_code == 405, response.content
    assert response.json()["code"] == "method_not_allowed"


def test_a_supported_method_without_its_scope_is_still_403(client_a: User) -> None:
    response = _key_client(client_a, ["media:read"]).post("/api/v1/webhooks/", data={}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/media/", "/api/v1/webhooks/"])
@pytest.mark.parametrize("cursor", ["garbage", "cD0yMDI2", "bz14", "cD1ub3QtYS1kYXRl"])
def test_a_malformed_cursor_is_400(path: str, cursor: str, client_a: User, api_as: Any) -> None:
    response = api_as(client_a).get(path, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_cursor"


def test_a_malformed_review_queue_cursor_is_400(moderator: User, api_as: Any) -> None:
    response = api_as(moderator).get("/api/v1/review/queue/", {"cursor": "garbage"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


@pytest.fixture
def stored_media(client_a: User) -> Any:
    from media.models import MediaItem

    data = b"\x89PNG\r\n\x1a\n" + b"ttl" * 20
    item = MediaItem.objects.create(
        owner=client_a,
        kind="image",
        mime_type="image/png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original_filename="ttl.png",
        status="stored",
    )
    item.storage_key = default_storage.save(f"media/{item.pk}/original", ContentFile(data))
    item.save(update_fields=["storage_key"])
    return item


def test_download_urls_live_as_long_as_the_body_says(stored_media: Any, client_a: User, api_as: Any) -> None:
    import time

    api = api_as(client_a)
    body = api.get(f"/api/v1/media/{stored_media.pk}/").json()
    assert body["download_url_expires_in"] == 300
    start = time.time()
    with mock.patch("django.core.signing.time.time", return_value=start + 250):
        later = api.get(f"/api/v1/media/{stored_media.pk}/").json()  # served from the detail cache
    assert later["download_url"] != body["download_url"], "the URL must be signed for each response"
    plain = APIClient()
    with mock.patch("django.core.signing.time.time", return_value=start + 290):
        assert plain.get(body["download_url"]).status_code == 200
    with mock.patch("django.core.signing.time.time", return_value=start + 310):
        assert plain.get(body["download_url"]).status_code == 404
    with mock.patch("django.core.signing.time.time", return_value=start + 540):
        assert plain.get(later["download_url"]).status_code == 200


def test_unknown_ids_in_canonical_form_are_404_in_the_error_shape(moderator: User, api_as: Any) -> None:
    response = api_as(moderator).get(f"/api/v1/review/items/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "details"}


# --- inputs as strict as the schema (schemathesis found each of these accepted) ---------------------------------
def test_a_query_parameter_sent_empty_is_refused_not_taken_as_absent(moderator: User, api_as: Any) -> None:
    response = api_as(moderator).get("/api/v1/review/queue/", {"status": ""})
    assert response.status_code == 400
    assert response.json()["details"]["fields"]["status"]


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "a.mp4", "size": 20 << 20, "content_type": "video/mp4", "review_requested": 0},
        {"filename": "a.mp4", "size": 20 << 20, "content_type": "video/mp4", "review_requested": "yes"},
        {"filename": 0, "size": 20 << 20, "content_type": "video/mp4"},
        {"filename": "a.mp4", "size": 20 << 20, "content_type": "video/mp4", "colour": "blue"},
    ],
)
def test_json_inputs_refuse_what_the_schema_refuses(body: dict[str, Any], client_a: User, api_as: Any) -> None:
    response = api_as(client_a).post("/api/v1/media/uploads/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"


def test_a_form_boolean_is_true_or_false_only(client_a: User, api_as: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    png = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
    response = api_as(client_a).post("/api/v1/media/", {"file": png, "review_requested": "1"}, format="multipart")
    assert response.status_code == 400
    assert "review_requested" in response.json()["details"]["fields"]


def test_the_schema_documents_pages_and_errors() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    media_list = schema["paths"]["/api/v1/media/"]["get"]["responses"]
    page = media_list["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"next", "previous", "results"}
    for status in ("400", "401", "403", "429"):
        assert media_list[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["MultipartStartInputRequest"]["additionalProperties"] is False
