"""Where media bytes live: keys, local copies for detectors, artifacts and short-lived URLs.

Keys are `media/<owner>/<media_id>/original` and `media/<owner>/<media_id>/artifacts/<name>`; client
filenames never reach a key. The same functions work on filesystem storage (embedded run) and S3.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.signing import TimestampSigner

if TYPE_CHECKING:
    from media.models import MediaItem

_SAFE_ARTIFACT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,80}$")
COPY_CHUNK = 1024 * 1024


def media_prefix(item: MediaItem) -> str:
    return f"media/{item.owner_id}/{item.id}"


def original_key(item: MediaItem) -> str:
    return original_key_for(item.owner_id, item.id)


def original_key_for(owner_id: object, media_id: object) -> str:
    return f"media/{owner_id}/{media_id}/original"


def artifact_key(item: MediaItem, name: str) -> str:
    if not _SAFE_ARTIFACT.match(name):
        raise ValueError(f"unsafe artifact name {name!r}")
    return f"{media_prefix(item)}/artifacts/{name}"


@contextmanager
def local_copy(item: MediaItem) -> Iterator[Path]:
    """The item's bytes as a local file for detectors, streamed in chunks and removed afterwards.

    An item stored without its SHA-256 (audio or video completed on S3, whose completion does not read the
    object) is hashed on the way and the hash recorded (media.services.media_item_record_sha256); if the owner
    already had those bytes the item is resolved to that one and deleted, and this raises FileNotFoundError,
    which the analysis treats as media that went away."""
    directory = Path(tempfile.mkdtemp(prefix="hlekkr-analysis-", dir=settings.FILE_UPLOAD_TEMP_DIR))
    path = directory / "original"
    digest = hashlib.sha256() if not item.sha256 else None
    try:
        with default_storage.open(item.storage_key, "rb") as source, path.open("wb") as target:
            while chunk := source.read(COPY_CHUNK):
                if digest is not None:
                    digest.update(chunk)
                target.write(chunk)
        if digest is not None:
            from media.services import media_item_record_sha256

            if not media_item_record_sha256(media_id=item.pk, sha256=digest.hexdigest()):
                raise FileNotFoundError(f"media {item.pk} is a duplicate of an earlier item and was removed")
            item.sha256 = digest.hexdigest()
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


def write_object(key: str, body: IO[bytes], *, size: int, content_type: str) -> None:
    """Write one object from a seekable local file in a single request: on S3 one PutObject (no multipart, no
    transfer threads; direct uploads are far below S3's 5 GB single-PUT limit), on filesystem storage the
    storage's own save. `content_type` must be the sniffed type: S3 serves the object with it."""
    body.seek(0)
    if hasattr(default_storage, "bucket_name"):
        from media import multipart

        params = dict(default_storage.get_object_parameters(key))  # type: ignore[attr-defined]
        params["ContentType"] = content_type
        multipart.s3_client().put_object(
            Bucket=multipart.s3_bucket(), Key=multipart.s3_key(key), Body=body, ContentLength=size, **params
        )
        return
    saved = default_storage.save(key, File(body, name=key))
    if saved != key:
        raise RuntimeError(f"storage saved {saved!r} instead of {key!r}")


class StreamingPut:
    """One S3 PutObject whose body is sent while it is still arriving, so storing overlaps receiving.

    PutObject needs the length up front; the caller knows it (media/api/uploads.py works it out from the request's
    Content-Length when the file is the form's last part). The request goes to a presigned URL (the signature
    covers host, key and content type; the payload is UNSIGNED, as for any presigned PUT), on a connection of its
    own. The last bytes are held back until `send_rest()` (or `commit()`): an upload refused before then is
    `abort()`ed by closing the connection mid-body, and S3 never creates an object from an incomplete body.
    `commit()` waits for S3's answer.
    """

    def __init__(self, key: str, *, size: int, content_type: str, timeout: float = 60.0) -> None:
        import http.client
        from urllib.parse import urlsplit

        from media import multipart

        url = multipart.s3_client().generate_presigned_url(
            "put_object",
            Params={"Bucket": multipart.s3_bucket(), "Key": multipart.s3_key(key), "ContentType": content_type},
            ExpiresIn=300,
        )
        parts = urlsplit(url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
        self.size, self.sent, self.held = size, 0, b""
        self.open = True
        self.connection.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        self.connection.putheader("Content-Length", str(size))
        self.connection.putheader("Content-Type", content_type)
        self.connection.endheaders()

    def write(self, chunk: bytes) -> None:
        """Send what was held and hold `chunk` (the body's end is only sent by send_rest or commit)."""
        if self.held:
            self.connection.send(self.held)
            self.sent += len(self.held)
        self.held = chunk

    @property
    def body_complete(self) -> bool:
        """Every byte went out: S3 may create the object now, whatever becomes of this connection."""
        return self.sent == self.size and not self.held

    def send_rest(self) -> None:
        """Send the held bytes without waiting for S3's answer (it stores the object meanwhile)."""
        if self.sent + len(self.held) != self.size:
            raise RuntimeError(f"streamed {self.sent + len(self.held)} bytes of {self.size}")
        if self.held:
            self.connection.send(self.held)
            self.sent += len(self.held)
            self.held = b""

    def commit(self) -> None:
        """Send what is still held and wait for S3's answer; raises when S3 did not store the object."""
        if not self.open:  # http.client would open a new connection and send the rest as a request of its own
            raise RuntimeError("the streamed write was aborted")
        try:
            self.send_rest()
            response = self.connection.getresponse()
            answer = response.read(4096)
        finally:
            self.open = False
            self.connection.close()
        if response.status != 200:
            raise RuntimeError(f"S3 answered {response.status}: {answer[:200]!r}")

    def abort(self) -> None:
        if self.open:
            self.open = False
            self.connection.close()


def can_stream_put(key: str) -> bool:
    """Streaming PUTs are used on S3 when no extra object parameters (encryption, cache headers...) apply:
    those would have to be signed into the URL; the plain PutObject of write_object handles them."""
    if not hasattr(default_storage, "bucket_name"):
        return False
    return not default_storage.get_object_parameters(key)  # type: ignore[attr-defined]
