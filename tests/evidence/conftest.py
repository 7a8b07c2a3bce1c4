"""A media item analysed end to end by the real detectors (no upload API, no mocks)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from analysis import services
from analysis.models import Analysis
from media.models import MediaItem, MediaStatus
from media.storage import original_key


def photo_jpeg(side: int = 192, quality: int = 90) -> bytes:
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def photo() -> bytes:
    return photo_jpeg()


@pytest.fixture
def stored_item(db: Any) -> Callable[..., MediaItem]:
    def make(owner: Any, data: bytes | None = None) -> MediaItem:
        data = photo_jpeg() if data is None else data
        item = MediaItem.objects.create(
            owner=owner,
            kind="image",
            mime_type="image/jpeg",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            original_filename="portrait shot.jpg",
            status=MediaStatus.STORED,
            width=192,
            height=192,
        )
        item.storage_key = default_storage.save(original_key(item), ContentFile(data))
        item.save(update_fields=["storage_key"])
        return item

    return make


@pytest.fixture
def analysed(stored_item: Callable[..., MediaItem]) -> Callable[..., tuple[MediaItem, Analysis]]:
    def make(owner: Any, data: bytes | None = None) -> tuple[MediaItem, Analysis]:
        item = stored_item(owner, data)
        analysis = services.analysis_create(media=item)
        done = services.analysis_run(analysis_id=analysis.pk)
        assert done is not None and done.status == "completed", done and done.failure_reason
        item.refresh_from_db()
        return item, done

    return make
