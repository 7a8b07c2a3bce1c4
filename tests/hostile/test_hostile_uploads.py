"""Every file of the hostile corpus through the direct and the multipart upload: a documented 4xx or a stored
item, never a 5xx, and a refused file leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from corpus import ACCEPT, CORPUS, Hostile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from hlekkr.errors import CATALOGUE
from media.models import MediaItem, MediaStatus

pytestmark = pytest.mark.django_db
CATALOGUED = {entry.code: entry.statuses for entry in CATALOGUE}


@pytest.fixture(autouse=True)
def _own_storage(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "base_url": "/files/"},
        },
    }
    return root


@pytest.fixture(autouse=True)
def _no_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads only: the detectors get the corpus in test_hostile_worker.py (in a process of their own)."""
    from collections import defaultdict

    from hlekkr import events

    monkeypatch.setattr(events, "_subscribers", defaultdict(list))


def _judge(entry: Hostile, response: Any, route: str) -> None:
    status = response.status_code
    assert status < 500, f"{entry.name} via {route}: {status} {response.content[:300]!r}"
    if status in (200, 201):
        assert ACCEPT in entry.outcomes, f"{entry.name} via {route} was stored; expected one of {entry.outcomes}"
        assert MediaItem.objects.get(pk=response.json()["id"]).status == MediaStatus.STORED
        return
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert status in CATALOGUED.get(body["code"], ()), f"{entry.name}: {status} {body['code']} is not catalogued"
    assert body["code"] in entry.outcomes, f"{entry.name} via {route}: {status} {body} not in {entry.outcomes}"


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e.name)
def test_direct_upload(entry: Hostile, client_a: Any, api_as: Any) -> None:
    upload = SimpleUploadedFile(entry.filename, entry.data, content_type=entry.content_type)
    response = api_as(client_a).post("/api/v1/media/", {"file": upload}, format="multipart")
    _judge(entry, response, "direct upload")
    if response.status_code in (200, 201):
        name = response.json()["original_filename"]
        assert len(name) <= 255 and "/" not in name and "\\" not in name and "\u202e" not in name, name


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    from media import conf

    monkeypatch.setattr(conf, "MIN_PART_SIZE", 4 * 1024 * 1024)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e.name)
def test_multipart_upload(entry: Hostile, client_a: Any, api_as: Any, small_parts: None) -> None:
    api = api_as(client_a)
    data = entry.data
    started = api.post(
        "/api/v1/media/uploads/",
        {"filename": entry.filename, "size": len(data), "content_type": entry.content_type},
        format="json",
    )
    if started.status_code != 201:  # refused at the start (an empty file, a type that is not media)
        _judge(entry, started, "multipart start")
        return
    ticket = started.json()
    parts = []
    for part in ticket["parts"]:
        number, size = part["part_number"], ticket["part_size"]
        url = urlsplit(part["url"])
        put = Client().put(
            f"{url.path}?{url.query}",
            data=data[(number - 1) * size : number * size],
            content_type="application/octet-stream",
        )
        assert put.status_code == 200, put.content
        parts.append({"part_number": number, "etag": put["ETag"].strip('"')})
    done = api.post(f"/api/v1/media/uploads/{ticket['upload_id']}/complete/", {"parts": parts}, format="json")
    _judge(entry, done, "multipart upload")
    if done.status_code not in (200, 201):
        item = MediaItem.objects.get(pk=ticket["media_id"])
        assert item.status != MediaStatus.STORED
