"""Fixtures for the media tests: fresh storage and cache per test, an after-commit event recorder and an
upload helper. Media generators live in media_factories.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hlekkr import events


@pytest.fixture(autouse=True)
def _fresh_storage_and_cache(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Each test gets an empty filesystem store and an empty cache, so 'nothing left behind' is checkable."""
    from django.core.cache import cache

    root = tmp_path / "storage"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "base_url": "/files/"},
        },
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _media_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media tests run without the downstream apps' subscribers and detail providers (analysis would run its
    detectors on every stored item); tests that need a subscriber or provider register their own."""
    from collections import defaultdict

    from media import extensions

    monkeypatch.setattr(events, "_subscribers", defaultdict(list))
    monkeypatch.setattr(extensions, "_providers", [])


@pytest.fixture
def stored_events() -> Iterator[list[dict[str, Any]]]:
    """Records media.stored deliveries the way the analysis app will receive them: after commit."""
    received: list[dict[str, Any]] = []

    def handler(event: str, payload: dict[str, Any]) -> None:
        received.append(payload)

    events.subscribe(events.MEDIA_STORED, handler, after_commit=True)
    yield received
    events.unsubscribe(events.MEDIA_STORED, handler)


@pytest.fixture
def upload(api_as: Any) -> Any:
    """upload(user, name, data, content_type, **form) -> response of POST /api/v1/media/."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    def send(user: Any, name: str, data: bytes, content_type: str = "image/jpeg", **form: Any) -> Any:
        client = api_as(user)
        file = SimpleUploadedFile(name, data, content_type=content_type)
        return client.post("/api/v1/media/", {"file": file, **form}, format="multipart")

    return send
