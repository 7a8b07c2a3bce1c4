"""Where media bytes live: keys, local copies for detectors, artifacts and short-lived URLs.

Keys are `media/<owner>/<media_id>/original` and `media/<owner>/<media_id>/artifacts/<name>`; client
filenames never reach a key. The same functions work on filesystem storage (embedded run) and S3.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.signing import TimestampSigner

if TYPE_CHECKING:
    from media.models import MediaItem

_SAFE_ARTIFACT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,80}$")
COPY_CHUNK = 1024 * 1024


def media_prefix(item: MediaItem) -> str:
    return f"media/{item.owner_id}/{item.id}"


def original_key(item: MediaItem) -> str:
    return f"{media_prefix(item)}/original"


def artifact_key(item: MediaItem, name: str) -> str:
    if not _SAFE_ARTIFACT.match(name):
        raise ValueError(f"unsafe artifact name {name!r}")
    return f"{media_prefix(item)}/artifacts/{name}"


@contextmanager
def local_copy(item: MediaItem) -> Iterator[Path]:
    """The item's bytes as a local file for detectors, streamed in chunks and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="hlekkr-analysis-", dir=settings.FILE_UPLOAD_TEMP_DIR))
    path = directory / "original"
    try:
        with default_storage.open(item.storage_key, "rb") as source, path.open("wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def artifact_save(item: MediaItem, name: str, data: bytes) -> str:
    """Store a detector artifact beside the media (overwrites on re-run) and return its key."""
    key = artifact_key(item, name)
    if default_storage.exists(key):
        default_storage.delete(key)
    saved = default_storage.save(key, ContentFile(data))
    return saved


def delete_prefix(item: MediaItem) -> None:
    """Remove the original and every artifact of `item`."""
    prefix = media_prefix(item)
    try:
        _directories, files = default_storage.listdir(f"{prefix}/artifacts")
    except (FileNotFoundError, OSError):
        files = []
    for name in files:
        default_storage.delete(f"{prefix}/artifacts/{name}")
    if item.storage_key and default_storage.exists(item.storage_key):
        default_storage.delete(item.storage_key)


_download_signer = TimestampSigner(salt="hlekkr.media.download")


def download_url(key: str, *, expires: int = 300) -> str:
    """A short-lived URL for `key`: presigned on S3; on filesystem storage a signed Hlekkr URL that the
    media app serves (`/api/v1/files/<token>/`), valid for `expires` seconds."""
    backend = default_storage
    if hasattr(backend, "bucket_name"):
        return str(backend.url(key, expire=expires))  # type: ignore[call-arg]
    # sign_object: URL-safe base64, so keys with slashes fit in one path segment
    token = _download_signer.sign_object({"k": key, "e": int(expires)})
    return f"/api/v1/files/{token}/"


def download_token_key(token: str) -> str | None:
    """The key a download token grants, or None if it is forged or expired."""
    from django.core.signing import BadSignature, SignatureExpired

    try:
        payload = _download_signer.unsign_object(token)
        _download_signer.unsign_object(token, max_age=int(payload["e"]))
        key = str(payload["k"])
    except (BadSignature, SignatureExpired, ValueError, KeyError, TypeError):
        return None
    return key
