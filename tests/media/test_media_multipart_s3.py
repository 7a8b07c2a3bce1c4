"""The same upload flows against S3: moto's server over real HTTP through django-storages and boto3.

moto does not check presigned signatures or expiry, so those are tested on the filesystem twin's tokens;
here the point is that parts go to S3 directly, completion checks what S3 holds, and nothing is left behind."""

from __future__ import annotations

import hashlib
from typing import Any
from unittest import mock

import pytest
import requests
from media_factories import jpeg_bytes, stored_files, wav_bytes

from media import multipart, storage
from media.models import MediaItem, MediaStatus, MultipartUpload, UploadState

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


def start(api: Any, data: bytes, *, size: int | None = None, ctype: str = "audio/wav") -> dict[str, Any]:
    response = api.post(
        "/api/v1/media/uploads/",
        {"filename": "long.wav", "size": len(data) if size is None else size, "content_type": ctype},
        format="json",
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def put_parts(body: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    size, sent = body["part_size"], []
    for part in body["parts"]:
        n = part["part_number"]
        response = requests.put(part["url"], data=data[(n - 1) * size : n * size], timeout=30)
        assert response.status_code == 200, response.text
        sent.append({"part_number": n, "etag": response.headers["ETag"].strip('"')})
    return sent


def complete(api: Any, upload_id: str, parts: list[dict[str, Any]]) -> Any:
    return api.post(f"/api/v1/media/uploads/{upload_id}/complete/", {"parts": parts}, format="json")


def open_s3_uploads() -> list[Any]:
    client = multipart.s3_client()
    return list(client.list_multipart_uploads(Bucket=multipart.s3_bucket()).get("Uploads", []))


def test_a_multipart_upload_goes_to_s3_directly_and_completes(
    s3_storage: Any,
    client_a: Any,
    api_as: Any,
    stored_events: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=11)  # ~9.2 MiB: two parts of 8 MiB
    body = start(api, data)
    assert body["part_size"] == 8 * MiB and len(body["parts"]) == 2
    assert body["parts"][0]["url"].startswith(s3_storage.endpoint_url) or "X-Amz-Signature" in body["parts"][0]["url"]
    assert "X-Amz-Expires=900" in body["parts"][0]["url"]
    parts = put_parts(body, data)
    status = api.get(f"/api/v1/media/uploads/{body['upload_id']}/").json()
    assert [p["part_number"] for p in status["parts_received"]] == [1, 2] and status["missing_parts"] == []
    with django_capture_on_commit_callbacks(execute=True):
        done = complete(api, body["upload_id"], parts)
    assert done.status_code == 201, done.content
    item = MediaItem.objects.get(pk=body["media_id"])
    assert item.status == MediaStatus.STORED and item.kind == "audio" and item.size == len(data)
    # Completion did not read the object back: the worker's copy hashes it (docs/media.md).
    assert item.sha256 == ""
    with storage.local_copy(item) as path:
        assert path.read_bytes() == data
    item.refresh_from_db()
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_files() == [item.storage_key]
    assert open_s3_uploads() == []
    assert len(stored_events) == 1
    # the detail's download URL is a presigned S3 GET that returns the bytes
    detail = api.get(f"/api/v1/media/{item.id}/").json()
    assert requests.get(detail["download_url"], timeout=30).content == data


def test_resume_reissues_presigned_urls_for_missing_parts(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=12)
    body = start(api, data)
    first = put_parts({**body, "parts": body["parts"][:1]}, data)
    status = api.get(f"/api/v1/media/uploads/{body['upload_id']}/").json()
    assert status["missing_parts"] == [2] and [p["part_number"] for p in status["parts"]] == [2]
    second = put_parts({**status, "parts": status["parts"]}, data)
    assert complete(api, body["upload_id"], first + second).status_code == 201


def test_a_wrong_etag_is_refused_before_s3_completes(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=13)
    body = start(api, data)
    parts = put_parts(body, data)
    parts[1]["etag"] = "f" * 32
    response = complete(api, body["upload_id"], parts)
    assert response.status_code == 400 and response.json()["code"] == "etag_mismatch"
    assert stored_files() == []
    assert MultipartUpload.objects.get(pk=body["upload_id"]).state == UploadState.ACTIVE


def test_more_bytes_than_declared_on_s3_are_rejected_and_removed(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=14)
    body = start(api, data, size=len(data) - 10)
    parts = put_parts(body, data)  # the last part carries 10 bytes more than declared
    response = complete(api, body["upload_id"], parts)
    assert response.status_code == 400 and response.json()["code"] == "size_mismatch"
    assert stored_files() == [] and open_s3_uploads() == []
    assert MediaItem.objects.get(pk=body["media_id"]).status == MediaStatus.REJECTED


def test_bad_bytes_completed_on_s3_are_deleted(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = b"<html>" + b"A" * (9 * MiB)
    body = start(api, data, ctype="image/jpeg")
    response = complete(api, body["upload_id"], put_parts(body, data))
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert stored_files() == [] and open_s3_uploads() == []


def test_abort_on_s3_drops_the_multipart_upload(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=15)
    body = start(api, data)
    put_parts({**body, "parts": body["parts"][:1]}, data)
    assert len(open_s3_uploads()) == 1
    assert api.delete(f"/api/v1/media/uploads/{body['upload_id']}/").status_code == 204
    assert open_s3_uploads() == [] and stored_files() == []


def test_direct_upload_and_delete_on_s3(s3_storage: Any, client_a: Any, upload: Any, api_as: Any) -> None:
    data = jpeg_bytes(51)
    response = upload(client_a, "a.jpg", data, "image/jpeg")
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get(pk=response.json()["id"])
    head = multipart.s3_client().head_object(Bucket=multipart.s3_bucket(), Key=item.storage_key)
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == len(data)
    from media import storage

    storage.artifact_save(item, "ela.png", b"\x89PNG fake")
    assert len(stored_files()) == 2
    assert api_as(client_a).delete(f"/api/v1/media/{item.id}/").status_code == 204
    assert stored_files() == []


def test_refused_direct_uploads_leave_nothing_in_the_bucket(s3_storage: Any, client_a: Any, upload: Any) -> None:
    response = upload(client_a, "poly.jpg", jpeg_bytes(1) + b"PK\x03\x04" + b"\x00" * 30, "image/jpeg")
    assert response.status_code == 415
    assert stored_files() == [] and not MediaItem.objects.exists()


def test_completing_audio_reads_only_the_objects_two_ends(s3_storage: Any, client_a: Any, api_as: Any) -> None:
    api = api_as(client_a)
    data = wav_bytes(seconds=200, rate=48000, seed=16)  # ~18 MiB: three parts
    body = start(api, data)
    parts = put_parts(body, data)
    client = multipart.s3_client()
    with mock.patch.object(client, "get_object", wraps=client.get_object) as get:
        assert complete(api, body["upload_id"], parts).status_code == 201
    ranges = [call.kwargs.get("Range") for call in get.call_args_list]
    assert len(ranges) == 2 and all(ranges), ranges  # the head and the tail, never the whole object


def test_a_large_image_is_hashed_and_checked_in_one_read_at_completion(
    s3_storage: Any, client_a: Any, api_as: Any
) -> None:
    api = api_as(client_a)
    data = jpeg_bytes(17, size=(2600, 2000), quality=98)
    data = data + b"\x00" * max(0, 8 * MiB + 1 - len(data))  # padding after EOI is allowed; two parts
    body = start(api, data, ctype="image/jpeg")
    parts = put_parts(body, data)
    client = multipart.s3_client()
    with mock.patch.object(client, "get_object", wraps=client.get_object) as get:
        done = complete(api, body["upload_id"], parts)
    assert done.status_code == 201, done.content
    whole_reads = [call for call in get.call_args_list if not call.kwargs.get("Range")]
    assert len(whole_reads) == 1
    assert MediaItem.objects.get(pk=body["media_id"]).sha256 == hashlib.sha256(data).hexdigest()
    # the same bytes again resolve to that item at completion, as before
    again = start(api, data, ctype="image/jpeg")
    second = complete(api, again["upload_id"], put_parts(again, data))
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert second.json()["id"] == body["media_id"]


def test_audio_sent_twice_resolves_to_the_first_item_once_the_worker_has_hashed_it(
    s3_storage: Any, client_a: Any, api_as: Any
) -> None:
    from hlekkr.audit.models import AuditEvent

    api = api_as(client_a)
    data = wav_bytes(seconds=100, rate=48000, seed=18)
    ids = []
    for _ in range(2):
        body = start(api, data)
        assert complete(api, body["upload_id"], put_parts(body, data)).status_code == 201
        ids.append(body["media_id"])
    first, second = (MediaItem.objects.get(pk=i) for i in ids)
    with storage.local_copy(first):
        pass
    with pytest.raises(FileNotFoundError), storage.local_copy(second):
        pass
    second.refresh_from_db()
    assert second.status == MediaStatus.DELETED and second.sha256 == ""
    assert MultipartUpload.objects.get(media=second).duplicate_of_id == first.pk
    assert stored_files() == [first.storage_key]
    duplicate = AuditEvent.objects.get(action="media.upload_duplicate")
    assert duplicate.payload["media_id"] == str(second.pk)
    # a later copy of the kept item does not hash it again
    with mock.patch("media.services.media_item_record_sha256") as record, storage.local_copy(first):
        record.assert_not_called()
