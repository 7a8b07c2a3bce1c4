"""Multipart uploads on the embedded default (filesystem storage): part URLs point at Hlekkr itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from media_factories import jpeg_bytes, stored_files, wav_bytes

from hlekkr.audit.models import AuditEvent
from media import multipart
from media.models import MediaItem, MediaStatus, MultipartUpload, UploadState
from media.services import multipart_uploads_abort_stale, part_size_for

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 KiB parts keep the tests fast; the 8 MiB rule itself is tested separately."""
    from media import conf

    monkeypatch.setattr(conf, "MIN_PART_SIZE", 4096)


def put_part(url: str, data: bytes) -> Any:
    parts = urlsplit(url)
    return Client().put(f"{parts.path}?{parts.query}", data=data, content_type="application/octet-stream")


def start(api: Any, data: bytes, *, name: str = "memo.wav", ctype: str = "audio/wav", size: int | None = None) -> Any:
    return api.post(
        "/api/v1/media/uploads/",
        {"filename": name, "size": len(data) if size is None else size, "content_type": ctype},
        format="json",
    )


def send_all(body: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    size = body["part_size"]
    sent = []
    for part in body["parts"]:
        n = part["part_number"]
        response = put_part(part["url"], data[(n - 1) * size : n * size])
        assert response.status_code == 200, response.content
        sent.append({"part_number": n, "etag": response["ETag"].strip('"')})
    return sent


def complete(api: Any, upload_id: str, parts: list[dict[str, Any]]) -> Any:
    return api.post(f"/api/v1/media/uploads/{upload_id}/complete/", {"parts": parts}, format="json")


def assert_not_stored(upload_id: str) -> None:
    upload = MultipartUpload.objects.select_related("media").get(pk=upload_id)
    assert upload.media.status != MediaStatus.STORED
    assert not any(name.endswith("/original") for name in stored_files())


def test_part_size_is_at_least_8_mib_and_at_most_10000_parts() -> None:
    from media import conf

    assert conf.MIN_PART_SIZE == 4096  # patched here; the real rule below uses the constant 8 MiB
    assert max(8 * MiB, -(-(5 * 1024 * MiB) // 10_000)) == 8 * MiB
    big = 200 * 1024 * MiB
    assert -(-big // max(8 * MiB, -(-big // 10_000))) <= 10_000


def test_the_real_part_size_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from media import conf

    monkeypatch.setattr(conf, "MIN_PART_SIZE", 8 * MiB)
    assert part_size_for(13 * MiB) == 8 * MiB
    assert part_size_for(5 * 1024 * MiB) == 8 * MiB
    assert part_size_for(100 * 1024 * MiB) == -(-100 * 1024 * MiB // 10_000)


def test_a_multipart_upload_completes_through_hlekkr_part_urls(
    client_a: Any, api_as: Any, stored_events: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=1.5)
    started = start(api, data)
    assert started.status_code == 201, started.content
    body = started.json()
    assert set(body) >= {"media_id", "upload_id", "part_size", "parts", "expires_at"}
    assert body["part_size"] == 4096 and len(body["parts"]) == -(-len(data) // 4096)
    assert body["parts"][0]["url"].startswith("http://testserver/api/v1/media/uploads/")
    assert MediaItem.objects.get(pk=body["media_id"]).status == MediaStatus.UPLOADING
    parts = send_all(body, data)
    with django_capture_on_commit_callbacks(execute=True):
        done = complete(api, body["upload_id"], parts)
    assert done.status_code == 201, done.content
    item = MediaItem.objects.get(pk=body["media_id"])
    assert done.json()["id"] == str(item.id) and done.json()["status"] == "stored"
    assert item.kind == "audio" and item.mime_type == "audio/wav" and item.size == len(data)
    import hashlib

    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_files() == [item.storage_key]  # parts folder gone
    assert len(stored_events) == 1 and stored_events[0]["media_id"] == str(item.id)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"media.upload_started", "media.upload_completed"} <= actions


def test_the_part_put_answers_with_the_md5_etag_like_s3(client_a: Any, api_as: Any) -> None:
    import hashlib

    body = start(api_as(client_a), wav_bytes()).json()
    chunk = b"a" * 4096
    response = put_part(body["parts"][0]["url"], chunk)
    assert response.status_code == 200
    assert response["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'  # noqa: S324


def test_status_lists_received_parts_and_reissues_urls_for_missing_ones(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=1.0)
    body = start(api, data).json()
    put_part(body["parts"][0]["url"], data[:4096])
    status = api.get(f"/api/v1/media/uploads/{body['upload_id']}/")
    assert status.status_code == 200
    info = status.json()
    assert [p["part_number"] for p in info["parts_received"]] == [1]
    assert info["missing_parts"] == list(range(2, len(body["parts"]) + 1))
    assert [p["part_number"] for p in info["parts"]] == info["missing_parts"]
    # the resumed URLs work and finish the upload
    rest = {"parts": info["parts"], "part_size": info["part_size"]}
    sent = [{"part_number": 1, "etag": info["parts_received"][0]["etag"]}, *send_all(rest, data)]
    assert complete(api, body["upload_id"], sent).status_code == 201


def test_a_part_token_for_another_part_is_refused(client_a: Any, api_as: Any) -> None:
    body = start(api_as(client_a), wav_bytes()).json()
    url = body["parts"][0]["url"].replace("/parts/1/", "/parts/2/")
    response = put_part(url, b"x" * 10)
    assert response.status_code == 403 and response.json()["code"] == "part_token_invalid"


def test_a_forged_part_token_is_refused(client_a: Any, api_as: Any) -> None:
    body = start(api_as(client_a), wav_bytes()).json()
    url = body["parts"][0]["url"]
    response = put_part(url[:-3] + ("abc" if not url.endswith("abc") else "xyz"), b"x" * 10)
    assert response.status_code == 403 and response.json()["code"] == "part_token_invalid"
    assert set(response.json()) == {"code", "message", "details"}


def test_a_token_signed_for_another_upload_is_refused(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    first = start(api, wav_bytes(seed=1)).json()
    second = start(api, wav_bytes(seed=2)).json()
    token = urlsplit(first["parts"][0]["url"]).query
    response = Client().put(f"/api/v1/media/uploads/{second['upload_id']}/parts/1/?{token}", data=b"x")
    assert response.status_code == 403 and response.json()["code"] == "part_token_invalid"


def test_an_expired_part_token_is_refused(client_a: Any, api_as: Any) -> None:
    body = start(api_as(client_a), wav_bytes()).json()
    expired = multipart.part_token(body["upload_id"], 1, timezone.now() - timedelta(seconds=1))
    response = Client().put(f"/api/v1/media/uploads/{body['upload_id']}/parts/1/?token={expired}", data=b"x")
    assert response.status_code == 403 and response.json()["code"] == "part_token_expired"


def test_part_urls_expire_after_the_configured_ttl(client_a: Any, api_as: Any, settings: Any) -> None:
    settings.HLEKKR_PART_URL_TTL = 60
    body = start(api_as(client_a), wav_bytes()).json()
    expires = MultipartUpload.objects.get(pk=body["upload_id"]).expires_at
    assert timedelta(seconds=55) < expires - timezone.now() <= timedelta(seconds=60)


def test_a_part_larger_than_the_part_size_is_refused(client_a: Any, api_as: Any) -> None:
    body = start(api_as(client_a), wav_bytes()).json()
    response = put_part(body["parts"][0]["url"], b"x" * 5000)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert multipart.fs_list_parts(body["upload_id"]) == {}


def test_completing_with_a_missing_part_is_refused_and_the_upload_stays_resumable(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all(body, data)
    response = complete(api, body["upload_id"], parts[:-1])
    assert response.status_code == 400 and response.json()["code"] == "missing_parts"
    assert response.json()["details"]["missing"] == [len(parts)]
    assert_not_stored(body["upload_id"])
    assert MultipartUpload.objects.get(pk=body["upload_id"]).state == UploadState.ACTIVE
    assert complete(api, body["upload_id"], parts).status_code == 201


def test_completing_with_a_part_never_uploaded_is_refused(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all({**body, "parts": body["parts"][:-1]}, data)
    listed = [*parts, {"part_number": len(body["parts"]), "etag": "0" * 32}]
    response = complete(api, body["upload_id"], listed)
    assert response.status_code == 400 and response.json()["code"] == "missing_parts"
    assert_not_stored(body["upload_id"])


def test_completing_with_a_wrong_etag_is_refused(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all(body, data)
    parts[0]["etag"] = "0" * 32
    response = complete(api, body["upload_id"], parts)
    assert response.status_code == 400 and response.json()["code"] == "etag_mismatch"
    assert response.json()["details"]["parts"] == [1]
    assert_not_stored(body["upload_id"])


def test_completing_with_parts_out_of_order_is_refused(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all(body, data)
    response = complete(api, body["upload_id"], list(reversed(parts)))
    assert response.status_code == 400 and response.json()["code"] == "parts_out_of_order"
    assert_not_stored(body["upload_id"])


def test_completing_someone_elses_upload_is_404(client_a: Any, outsider: Any, api_as: Any) -> None:
    data = wav_bytes()
    body = start(api_as(client_a), data).json()
    parts = send_all(body, data)
    response = complete(api_as(outsider), body["upload_id"], parts)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert MultipartUpload.objects.get(pk=body["upload_id"]).state == UploadState.ACTIVE
    assert_not_stored(body["upload_id"])


def test_completing_twice_is_409_upload_not_active(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all(body, data)
    assert complete(api, body["upload_id"], parts).status_code == 201
    again = complete(api, body["upload_id"], parts)
    assert again.status_code == 409 and again.json()["code"] == "upload_not_active"
    assert MediaItem.objects.filter(status=MediaStatus.STORED).count() == 1


def test_more_bytes_than_declared_are_rejected_and_nothing_is_kept(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data, size=len(data) - 100).json()
    parts = send_all(body, data + b"\x00" * 4096)
    response = complete(api, body["upload_id"], parts)
    assert response.status_code == 400 and response.json()["code"] == "size_mismatch"
    upload = MultipartUpload.objects.select_related("media").get(pk=body["upload_id"])
    assert upload.state == UploadState.FAILED and upload.media.status == MediaStatus.REJECTED
    assert stored_files() == []
    assert AuditEvent.objects.filter(action="media.upload_rejected", payload__code="size_mismatch").exists()


def test_bytes_that_are_not_the_declared_type_are_rejected_at_completion(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = jpeg_bytes(3)
    body = start(api, data, name="x.wav", ctype="audio/wav").json()
    response = complete(api, body["upload_id"], send_all(body, data))
    assert response.status_code == 415 and response.json()["code"] == "content_type_mismatch"
    assert MediaItem.objects.get(pk=body["media_id"]).status == MediaStatus.REJECTED
    assert stored_files() == []


def test_html_uploaded_in_parts_is_rejected_at_completion(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = b"<!doctype html><html><body><script>alert(1)</script></body></html>" + b" " * 5000
    body = start(api, data, name="page.jpg", ctype="image/jpeg").json()
    response = complete(api, body["upload_id"], send_all(body, data))
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert stored_files() == []


def test_start_refuses_an_unsupported_declared_type(client_a: Any, api_as: Any) -> None:
    response = start(api_as(client_a), b"x" * 100, name="a.svg", ctype="image/svg+xml")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert not MediaItem.objects.exists()


def test_start_refuses_zero_bytes(client_a: Any, api_as: Any) -> None:
    response = start(api_as(client_a), b"", name="a.wav")
    assert response.status_code == 400 and response.json()["code"] == "empty_file"


def test_start_refuses_sizes_over_the_role_maximum(client_a: Any, api_as: Any, settings: Any) -> None:
    settings.HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE = "client=1000,admin=5000"
    response = start(api_as(client_a), b"x", size=1001)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert response.json()["details"]["max_bytes"] == 1000


def test_start_refuses_sizes_over_the_global_maximum(client_a: Any, api_as: Any) -> None:
    response = start(api_as(client_a), b"x", size=5 * 1024 * 1024 * MiB + 1)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_start_refuses_unknown_fields(client_a: Any, api_as: Any) -> None:
    response = api_as(client_a).post(
        "/api/v1/media/uploads/", {"filename": "a", "size": 1, "content_type": "audio/wav", "x": 1}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_the_filename_is_sanitised_at_start(client_a: Any, api_as: Any) -> None:
    body = start(api_as(client_a), wav_bytes(), name="../../etc/passwd").json()
    assert MediaItem.objects.get(pk=body["media_id"]).original_filename == "passwd"


def test_a_completed_duplicate_resolves_to_the_stored_item(client_a: Any, api_as: Any, upload: Any) -> None:
    data = wav_bytes(seed=77)
    first = upload(client_a, "a.wav", data, "audio/wav").json()
    api = api_as(client_a)
    body = start(api, data).json()
    done = complete(api, body["upload_id"], send_all(body, data))
    assert done.status_code == 200 and done.json()["id"] == first["id"] and done.json()["duplicate"] is True
    assert MediaItem.objects.get(pk=body["media_id"]).status == MediaStatus.DELETED
    assert len([n for n in stored_files() if n.endswith("/original")]) == 1


def test_abort_removes_the_parts_and_the_placeholder(client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    send_all(body, data)
    assert stored_files() != []
    response = api.delete(f"/api/v1/media/uploads/{body['upload_id']}/")
    assert response.status_code == 204
    assert stored_files() == []
    assert MultipartUpload.objects.get(pk=body["upload_id"]).state == UploadState.ABORTED
    assert MediaItem.objects.get(pk=body["media_id"]).status == MediaStatus.DELETED
    again = api.delete(f"/api/v1/media/uploads/{body['upload_id']}/")
    assert again.status_code == 409 and again.json()["code"] == "upload_not_active"
    late = put_part(body["parts"][0]["url"], b"x")
    assert late.status_code == 409 and late.json()["code"] == "upload_not_active"


def test_the_periodic_task_aborts_uploads_left_for_24_hours(client_a: Any, api_as: Any) -> None:
    from media.tasks import abort_stale_uploads_task

    api = api_as(client_a)
    data = wav_bytes()
    old = start(api, data).json()
    fresh = start(api, wav_bytes(seed=8)).json()
    send_all(old, data)
    MultipartUpload.objects.filter(pk=old["upload_id"]).update(created_at=timezone.now() - timedelta(hours=25))
    assert abort_stale_uploads_task.delay().get() == 1
    assert MultipartUpload.objects.get(pk=old["upload_id"]).state == UploadState.ABORTED
    assert MultipartUpload.objects.get(pk=fresh["upload_id"]).state == UploadState.ACTIVE
    assert not multipart.parts_dir(old["upload_id"]).exists()
    assert AuditEvent.objects.filter(action="media.upload_aborted", payload__reason="stale").count() == 1
    assert multipart_uploads_abort_stale() == 0  # idempotent


def test_the_periodic_task_is_scheduled_on_the_maintenance_queue() -> None:
    from media.beat import SCHEDULE

    entry = SCHEDULE["media-abort-stale-uploads"]
    assert entry["task"] == "media.tasks.abort_stale_uploads_task"
    assert entry["options"] == {"queue": "maintenance"}


def test_an_item_deleted_while_its_upload_completes_stays_deleted_and_keeps_no_bytes(
    client_a: Any, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import services
    from media.services import media_item_delete

    api = api_as(client_a)
    data = wav_bytes()
    body = start(api, data).json()
    parts = send_all(body, data)
    # The bytes are judged by the inspector that watched them being assembled (one pass).
    finish = services.StreamInspector.finish

    def owner_deletes_meanwhile(*args: Any, **kwargs: Any) -> Any:
        media_item_delete(owner=client_a, media_id=body["media_id"])  # DELETE media/{id}/ lands mid-completion
        return finish(*args, **kwargs)

    monkeypatch.setattr(services.StreamInspector, "finish", owner_deletes_meanwhile)
    response = complete(api, body["upload_id"], parts)
    assert response.status_code == 409 and response.json()["code"] == "upload_not_active"
    upload = MultipartUpload.objects.select_related("media").get(pk=body["upload_id"])
    assert upload.media.status == MediaStatus.DELETED
    assert upload.state == UploadState.ABORTED and upload.failure_reason == "media_deleted"
    assert stored_files() == []


def test_a_part_retried_while_the_first_attempt_still_streams_is_stored_whole_with_its_own_etag(
    settings: Any,
) -> None:
    import hashlib
    import io
    import uuid

    upload_id = uuid.uuid4()
    first, retry = b"A" * 10_000, b"B" * 10_000

    class SlowBody(io.BytesIO):
        """The first attempt: after its first chunk the client's retry arrives and is written in full."""

        reads = 0

        def read(self, size: int | None = -1) -> bytes:
            SlowBody.reads += 1
            if SlowBody.reads == 2:
                multipart.fs_part_write(upload_id, 1, io.BytesIO(retry), max_bytes=20_000)
            return super().read(4096 if size is None or size < 0 else min(size, 4096))

    multipart.fs_part_write(upload_id, 1, SlowBody(first), max_bytes=20_000)
    stored = multipart.fs_list_parts(upload_id)[1]
    data = (multipart.parts_dir(upload_id) / "00001.part").read_bytes()
    assert data in (first, retry)  # one attempt whole, never the two interleaved
    assert stored.etag == hashlib.md5(data, usedforsecurity=False).hexdigest() and stored.size == len(data)
    multipart.fs_discard(upload_id)
