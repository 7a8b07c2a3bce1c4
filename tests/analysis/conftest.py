"""Fixtures for the analysis tests: stored media items made directly (no upload API), small real images, and a
recorder for domain events."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from analysis_samples import photo_jpeg
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from hlekkr import events
from media.models import MediaItem, MediaStatus
from media.storage import original_key


@pytest.fixture
def stored_media(db: Any) -> Callable[..., MediaItem]:
    """stored_media(owner, data=..., kind=..., mime=...) -> a stored MediaItem whose bytes are in storage."""

    def make(owner: Any, data: bytes | None = None, *, kind: str = "image", mime: str = "image/jpeg") -> MediaItem:
        data = photo_jpeg() if data is None else data
        item = MediaItem.objects.create(
            owner=owner,
            kind=kind,
            mime_type=mime,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            original_filename="sample",
            status=MediaStatus.STORED,
        )
        item.storage_key = default_storage.save(original_key(item), ContentFile(data))
        item.save(update_fields=["storage_key"])
        return item

    return make


@pytest.fixture
def published() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every analysis.completed / analysis.failed published during the test, in order."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(event: str, payload: dict[str, Any]) -> None:
        seen.append((event, payload))

    events.subscribe(events.ANALYSIS_COMPLETED, record, after_commit=False)
    events.subscribe(events.ANALYSIS_FAILED, record, after_commit=False)
    yield seen
    events.unsubscribe(events.ANALYSIS_COMPLETED, record)
    events.unsubscribe(events.ANALYSIS_FAILED, record)
