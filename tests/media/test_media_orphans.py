"""Storage failing during an upload, and processes killed between storage and database: a clear error, nothing
half-stored, and whatever a killed process left behind is swept after the grace period."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from media_factories import jpeg_bytes, stored_files, wav_bytes

from hlekkr.audit.models import AuditEvent
from media import multipart
from media.models import MediaItem, MediaStatus, MultipartUpload, StorageIntent
from media.services import media_storage_sweep_orphans, multipart_upload_abort

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """A SIGKILL between two lines: the transaction in flight rolls back and no cleanup after it runs."""


def killed_at_commit() -> Any:
    """Kill the upload inside its storing transaction (at the audit event), with its cleanup never running."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(mock.patch("media.services.audit_record", side_effect=Killed))
    stack.enter_context(mock.patch("media.services._delete_object"))
    stack.enter_context(mock.patch("media.services._forget"))
    stack.enter_context(mock.patch("media.multipart.s3_abort"))
    stack.enter_context(pytest.raises(Killed))
    return stack


def _age_intents(seconds: int = 7200) -> None:
    StorageIntent.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_a_storage_write_failing_half_way_is_a_503_and_leaves_nothing(client_a: Any, upload: Any) -> None:
    def half_write(name: str, content: Any, **kwargs: Any) -> str:
        path = Path(default_storage.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.write(b"\xff\xd8 half of a jpeg")
        raise OSError(28, "No space left on device")

    with mock.patch.object(default_storage, "save", side_effect=half_write):
        response = upload(client_a, "photo.jpg", jpeg_bytes())
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "service_unavailable"
    assert "Storage" in response.json()["message"]
    assert stored_files() == []
    assert MediaItem.objects.count() == 0
    assert StorageIntent.objects.count() == 0


def test_a_process_killed_between_storage_and_commit_leaves_an_orphan_the_sweep_removes(client_a: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from media.services import media_item_create_from_upload

    with killed_at_commit():
        media_item_create_from_upload(
            owner=client_a, uploaded_file=SimpleUploadedFile("p.jpg", jpeg_bytes(), content_type="image/jpeg")
        )
    # What the kill leaves: an object without a row, and the intent recorded before the write.
    assert MediaItem.objects.count() == 0
    assert len(stored_files()) == 1
    assert StorageIntent.objects.count() == 1

    assert media_storage_sweep_orphans() == 0  # inside the grace period: it may still be in flight
    assert len(stored_files()) == 1
    _age_intents()
    assert media_storage_sweep_orphans() == 1
    assert stored_files() == []
    assert StorageIntent.objects.count() == 0
    swept = AuditEvent.objects.get(action="media.orphan_swept")
    assert swept.payload["item"] == "never committed"
    assert media_storage_sweep_orphans() == 0  # idempotent


def test_a_stored_upload_leaves_no_intent_and_the_sweep_never_touches_it(client_a: Any, upload: Any) -> None:
    assert upload(client_a, "photo.jpg", jpeg_bytes()).status_code == 201
    assert StorageIntent.objects.count() == 0
    before = stored_files()
    # Even a stray intent for a live item's key is dropped without deleting the item's bytes.
    item = MediaItem.objects.get()
    StorageIntent.objects.create(media_id=item.id, key=item.storage_key)
    _age_intents()
    assert media_storage_sweep_orphans() == 1
    assert stored_files() == before


def test_a_multipart_start_killed_before_its_rows_commit_is_swept(client_a: Any, api_as: Any) -> None:
    with killed_at_commit():
        api_as(client_a).post(
            "/api/v1/media/uploads/", {"filename": "m.wav", "size": 5000, "content_type": "audio/wav"}, format="json"
        )
    assert MultipartUpload.objects.count() == 0
    intent = StorageIntent.objects.get()
    _age_intents()
    with mock.patch.object(multipart, "is_s3", return_value=True), mock.patch.object(multipart, "s3_abort") as abort:
        StorageIntent.objects.filter(pk=intent.pk).update(s3_upload_id="s3-upload-1")
        assert media_storage_sweep_orphans() == 1
    abort.assert_called_once_with(intent.key, "s3-upload-1")


def test_an_abort_killed_after_its_commit_has_its_parts_discarded_by_the_sweep(client_a: Any, api_as: Any) -> None:
    from tests.media.test_media_multipart_fs import put_part, start

    data = wav_bytes(seconds=0.5)
    ticket = start(api_as(client_a), data).json()
    assert put_part(ticket["parts"][0]["url"], data[:4096] if len(ticket["parts"]) > 1 else data).status_code == 200
    upload_row = MultipartUpload.objects.get()
    assert stored_files() != []
    with mock.patch("media.services._discard_upload_bytes", side_effect=Killed), pytest.raises(Killed):
        multipart_upload_abort(upload=upload_row, actor=client_a)
    assert MediaItem.objects.get().status == MediaStatus.DELETED
    assert stored_files() != []  # the parts outlived the kill
    _age_intents()
    assert media_storage_sweep_orphans() == 1
    assert stored_files() == []


def test_a_completed_abort_leaves_no_intent(client_a: Any, api_as: Any) -> None:
    from tests.media.test_media_multipart_fs import start

    ticket = start(api_as(client_a), wav_bytes(seconds=0.5)).json()
    response = api_as(client_a).delete(f"/api/v1/media/uploads/{ticket['upload_id']}/")
    assert response.status_code in (200, 204), response.content
    assert StorageIntent.objects.count() == 0
