"""POST /api/v1/media/: direct uploads, every bad input of issue 3, de-duplication and the media.stored event."""

from __future__ import annotations

from typing import Any

import pytest
from media_factories import jpeg_bytes, photo_jpeg, png_bomb, stored_files, wav_bytes, zip_bytes

from hlekkr.audit.models import AuditEvent
from media.models import MediaItem, MediaStatus
from tests.conftest import domain_callbacks


def assert_nothing_stored(owner: Any) -> None:
    assert not MediaItem.objects.filter(owner=owner).exists()
    assert stored_files() == []


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "details"}


def test_it_stores_a_photo_and_answers_201_with_the_item(client_a: Any, upload: Any) -> None:
    data = photo_jpeg()
    response = upload(client_a, "astronaut.jpg", data, "image/jpeg")
    assert response.status_code == 201, response.content
    body = response.json()
    item = MediaItem.objects.get(pk=body["id"])
    assert body["duplicate"] is False
    assert body["kind"] == "image" and body["mime_type"] == "image/jpeg"
    assert body["size"] == len(data) and body["status"] == "stored"
    assert body["original_filename"] == "astronaut.jpg"
    assert (body["width"], body["height"]) == (512, 512)
    assert item.storage_key == f"media/{client_a.pk}/{item.id}/original"
    assert stored_files() == [item.storage_key]
    import hashlib

    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert AuditEvent.objects.filter(action="media.uploaded", object_id=str(item.id)).count() == 1


def test_it_accepts_audio_and_records_its_duration(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "memo.wav", wav_bytes(seconds=2.0), "audio/wav")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "audio" and body["mime_type"] == "audio/wav"
    assert body["duration_seconds"] == pytest.approx(2.0, abs=0.05)


def test_it_keeps_review_requested_and_priority(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "a.jpg", jpeg_bytes(5), "image/jpeg", review_requested="true", priority="urgent")
    assert response.status_code == 201
    item = MediaItem.objects.get(pk=response.json()["id"])
    assert item.review_requested is True and item.priority == "urgent"


def test_it_refuses_unknown_form_fields(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "a.jpg", jpeg_bytes(5), "image/jpeg", colour="blue")
    assert_refused(response, 400, "validation_error")
    assert_nothing_stored(client_a)


def test_it_refuses_a_request_without_a_file(client_a: Any, api_as: Any) -> None:
    response = api_as(client_a).post("/api/v1/media/", {}, format="multipart")
    assert_refused(response, 400, "file_missing")


# --- bad input, one test each ------------------------------------------------------------------------------
def test_it_refuses_zero_bytes(client_a: Any, upload: Any) -> None:
    assert_refused(upload(client_a, "empty.jpg", b"", "image/jpeg"), 400, "empty_file")
    assert_nothing_stored(client_a)


def test_it_refuses_a_truncated_jpeg(client_a: Any, upload: Any) -> None:
    assert_refused(upload(client_a, "cut.jpg", photo_jpeg("coffee")[:2000], "image/jpeg"), 400, "corrupt_file")
    assert_nothing_stored(client_a)


def test_it_refuses_a_jpeg_cut_inside_its_scan_data(client_a: Any, upload: Any) -> None:
    data = photo_jpeg("coffee")
    assert_refused(upload(client_a, "cut.jpg", data[: len(data) * 2 // 3], "image/jpeg"), 400, "corrupt_file")
    assert_nothing_stored(client_a)


def test_it_refuses_a_png_declaring_ten_billion_pixels_before_decoding(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "bomb.png", png_bomb(), "image/png")
    assert_refused(response, 400, "too_many_pixels")
    assert_nothing_stored(client_a)


def test_it_refuses_images_over_the_configured_pixel_limit(client_a: Any, upload: Any, settings: Any) -> None:
    settings.HLEKKR_MAX_IMAGE_PIXELS = 320 * 240 - 1
    response = upload(client_a, "big.jpg", jpeg_bytes(1, (320, 240)), "image/jpeg")
    assert_refused(response, 400, "too_many_pixels")
    assert response.json()["details"] == {"width": 320, "height": 240, "max_pixels": 320 * 240 - 1}
    assert_nothing_stored(client_a)


def test_it_refuses_html_named_jpg(client_a: Any, upload: Any) -> None:
    html = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
    response = upload(client_a, "page.jpg", html, "image/jpeg")
    assert_refused(response, 415, "unsupported_media_type")
    assert response.json()["details"]["detected"] == "text/html"
    assert_nothing_stored(client_a)


def test_it_refuses_a_zip_named_jpg(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "archive.jpg", zip_bytes(), "image/jpeg")
    assert_refused(response, 415, "unsupported_media_type")
    assert_nothing_stored(client_a)


def test_it_refuses_a_jpeg_zip_polyglot(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "poly.jpg", jpeg_bytes(7) + zip_bytes(), "image/jpeg")
    assert_refused(response, 415, "polyglot_file")
    assert_nothing_stored(client_a)


def test_it_refuses_a_zip_local_header_hidden_after_the_jpeg_end(client_a: Any, upload: Any) -> None:
    # No end-of-central-directory at the tail, so only the walk to the JPEG's EOI finds it.
    response = upload(client_a, "poly.jpg", jpeg_bytes(7) + zip_bytes()[:60] + b"\x00" * 100, "image/jpeg")
    assert_refused(response, 415, "polyglot_file")
    assert_nothing_stored(client_a)


def test_it_refuses_significant_trailing_data_after_a_jpeg(client_a: Any, upload: Any) -> None:
    import os

    response = upload(client_a, "tail.jpg", jpeg_bytes(7) + os.urandom(64 * 1024), "image/jpeg")
    assert_refused(response, 415, "polyglot_file")
    assert_nothing_stored(client_a)


def test_it_refuses_svg_with_script(client_a: Any, upload: Any) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    response = upload(client_a, "logo.jpg", svg, "image/svg+xml")
    assert_refused(response, 415, "unsupported_media_type")
    assert response.json()["details"]["detected"] == "image/svg+xml"
    assert_nothing_stored(client_a)


def test_it_refuses_a_declared_content_type_that_disagrees_with_the_bytes(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "photo.png", jpeg_bytes(3), "image/png")
    assert_refused(response, 415, "content_type_mismatch")
    assert response.json()["details"] == {"declared": "image/png", "detected": "image/jpeg"}
    assert_nothing_stored(client_a)


def test_it_accepts_harmless_content_type_aliases(client_a: Any, upload: Any) -> None:
    assert upload(client_a, "a.jpg", jpeg_bytes(3), "image/jpg").status_code == 201
    assert upload(client_a, "b.wav", wav_bytes(seed=9), "audio/x-wav").status_code == 201
    assert upload(client_a, "c.jpg", jpeg_bytes(4), "application/octet-stream").status_code == 201


def test_it_refuses_files_over_the_direct_upload_limit_with_413(client_a: Any, upload: Any, settings: Any) -> None:
    settings.HLEKKR_MAX_DIRECT_UPLOAD_BYTES = 1000
    response = upload(client_a, "a.jpg", jpeg_bytes(3), "image/jpeg")
    assert_refused(response, 413, "payload_too_large")
    assert_nothing_stored(client_a)


def test_it_refuses_a_huge_body_from_its_content_length_before_reading_it(client_a: Any, api_as: Any) -> None:
    response = api_as(client_a).generic(
        "POST",
        "/api/v1/media/",
        b"x" * 10,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(100 * 1024 * 1024),
    )
    assert_refused(response, 413, "payload_too_large")


def test_it_sanitises_a_path_filename(client_a: Any, upload: Any) -> None:
    response = upload(client_a, "../../etc/passwd", jpeg_bytes(12), "image/jpeg")
    assert response.status_code == 201, response.content
    assert response.json()["original_filename"] == "passwd"
    item = MediaItem.objects.get(pk=response.json()["id"])
    assert "passwd" not in item.storage_key and ".." not in item.storage_key


def test_every_rejection_is_audited(client_a: Any, upload: Any) -> None:
    upload(client_a, "empty.jpg", b"", "image/jpeg")
    upload(client_a, "bomb.png", png_bomb(), "image/png")
    codes = list(AuditEvent.objects.filter(action="media.upload_rejected").values_list("payload__code", flat=True))
    assert codes == ["empty_file", "too_many_pixels"]


# --- de-duplication and the event --------------------------------------------------------------------------
def test_the_same_bytes_from_the_same_owner_return_the_existing_item(
    client_a: Any, upload: Any, stored_events: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    data = jpeg_bytes(21)
    with django_capture_on_commit_callbacks(execute=True):
        first = upload(client_a, "one.jpg", data, "image/jpeg")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = upload(client_a, "two.jpg", data, "image/jpeg")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["duplicate"] is True
    assert MediaItem.objects.filter(owner=client_a).count() == 1
    assert len(stored_files()) == 1
    assert domain_callbacks(callbacks) == []  # nothing published for the duplicate
    assert len(stored_events) == 1
    assert AuditEvent.objects.filter(action="media.upload_duplicate").count() == 1


def test_the_same_bytes_from_another_owner_are_a_separate_item(client_a: Any, client_b: Any, upload: Any) -> None:
    data = jpeg_bytes(22)
    first = upload(client_a, "one.jpg", data, "image/jpeg")
    second = upload(client_b, "one.jpg", data, "image/jpeg")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_bytes_of_a_deleted_item_can_be_uploaded_again(client_a: Any, upload: Any, api_as: Any) -> None:
    data = jpeg_bytes(23)
    first = upload(client_a, "one.jpg", data, "image/jpeg").json()
    assert api_as(client_a).delete(f"/api/v1/media/{first['id']}/").status_code == 204
    again = upload(client_a, "one.jpg", data, "image/jpeg")
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_media_stored_fires_once_after_commit_with_the_item(
    client_a: Any, upload: Any, stored_events: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client_a, "a.jpg", jpeg_bytes(31), "image/jpeg")
        assert stored_events == []  # not before commit
    assert len(domain_callbacks(callbacks)) == 1
    domain_callbacks(callbacks)[0]()
    assert stored_events == [
        {"media_id": response.json()["id"], "owner_id": client_a.pk, "kind": "image", "queue": "interactive"}
    ]


def test_media_stored_never_fires_for_a_rejected_upload(
    client_a: Any, upload: Any, stored_events: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        upload(client_a, "cut.jpg", photo_jpeg("coffee")[:2000], "image/jpeg")
    assert domain_callbacks(callbacks) == [] and stored_events == []


def test_a_failure_while_recording_leaves_no_object_and_no_row(
    client_a: Any, upload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import services

    def broken_audit(**kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    response = upload(client_a, "a.jpg", jpeg_bytes(41), "image/jpeg")
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert_nothing_stored(client_a)
    assert not MediaItem.objects.filter(status=MediaStatus.STORED).exists()
