"""Completing one multipart upload from many requests at once (PostgreSQL): the conditional UPDATE
active -> completing lets exactly one through; the others are refused with upload_not_active."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from django.db import connection
from media_factories import wav_bytes

from hlekkr.exceptions import Conflict
from media import multipart
from media.models import MediaItem, MediaStatus, MultipartUpload, UploadState
from media.services import multipart_upload_complete, multipart_upload_start

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    from media import conf

    monkeypatch.setattr(conf, "MIN_PART_SIZE", 4096)


def run_at_once(count: int, work: Any) -> tuple[list[Any], list[BaseException]]:
    """`work()` on `count` threads released together; each thread's result or exception, in no order."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            value = work()
            with lock:
                results.append(value)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def test_eight_concurrent_completions_store_the_upload_once(client_a: Any) -> None:
    data = wav_bytes(seconds=2.0)
    ticket = multipart_upload_start(owner=client_a, filename="memo.wav", size=len(data), content_type="audio/wav")
    upload = ticket.upload
    parts = []
    for number in range(1, upload.part_count + 1):
        chunk = data[(number - 1) * upload.part_size : number * upload.part_size]
        stored = multipart.fs_part_write(upload.id, number, io.BytesIO(chunk), max_bytes=upload.part_size)
        assert stored is not None
        parts.append({"part_number": number, "etag": stored.etag})

    results, errors = run_at_once(
        8, lambda: multipart_upload_complete(owner=client_a, upload_id=upload.id, parts=parts)
    )

    assert len(results) == 1, (results, errors)
    assert len(errors) == 7 and all(isinstance(e, Conflict) and e.code == "upload_not_active" for e in errors), errors
    upload.refresh_from_db()
    assert upload.state == UploadState.COMPLETED
    item = MediaItem.objects.get(pk=upload.media_id)
    assert item.status == MediaStatus.STORED and item.size == len(data)
    assert results[0].item.pk == item.pk
    assert MultipartUpload.objects.filter(state=UploadState.COMPLETING).count() == 0
