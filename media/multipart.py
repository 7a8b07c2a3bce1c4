"""The storage side of multipart uploads, for S3 and for its filesystem twin (the embedded run).

On S3 the client PUTs parts to presigned `UploadPart` URLs from a boto3 client that django-storages built
(same endpoint, region and credentials). On filesystem storage the part URLs point at Hlekkr itself
(`PUT /api/v1/media/uploads/<id>/parts/<n>/?token=...`) with a signed, expiring, single-part token; parts land
in `<storage root>/_multipart/<upload id>/` and the answer carries an MD5 `ETag`, exactly like S3, so one client
works against both. The services in media/services.py call these functions; nothing here touches the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.core import signing
from django.core.files.storage import default_storage
from django.utils import timezone

# A signing salt, not a secret (the secret is SECRET_KEY).
PART_TOKEN_SALT = "hlekkr.media.part"  # noqa: S105  # nosec B105
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    etag: str
    size: int


def is_s3() -> bool:
    return hasattr(default_storage, "bucket_name")


def s3_client() -> Any:
    """The boto3 client django-storages configured (endpoint, region, credentials, signature version)."""
    return default_storage.connection.meta.client  # type: ignore[attr-defined]


def s3_key(name: str) -> str:
    return str(default_storage._normalize_name(name))  # type: ignore[attr-defined]


def s3_bucket() -> str:
    return str(default_storage.bucket_name)  # type: ignore[attr-defined]


def clean_etag(value: str) -> str:
    return str(value or "").strip().strip('"').lower()


# --- filesystem twin ---------------------------------------------------------------------------------------
def parts_dir(upload_id: Any) -> Path:
    return Path(default_storage.location) / "_multipart" / str(upload_id)  # type: ignore[attr-defined]


def part_token(upload_id: Any, part_number: int, expires_at: datetime) -> str:
    payload = {"u": str(upload_id), "p": int(part_number), "x": int(expires_at.timestamp())}
    return signing.dumps(payload, salt=PART_TOKEN_SALT)


def part_token_check(token: str, *, upload_id: Any, part_number: int) -> str | None:
    """None when the token grants this upload's part now; otherwise a reason code."""
    try:
        payload = signing.loads(token, salt=PART_TOKEN_SALT)
    except signing.BadSignature:
        return "part_token_invalid"
    if not isinstance(payload, dict) or payload.get("u") != str(upload_id) or payload.get("p") != int(part_number):
        return "part_token_invalid"
    if int(payload.get("x", 0)) < int(timezone.now().timestamp()):
        return "part_token_expired"
    return None


def fs_part_write(upload_id: Any, part_number: int, body: Any, *, max_bytes: int) -> StoredPart | None:
    """Stream a part body to disk while computing its MD5; None if it exceeds `max_bytes` (nothing kept)."""
    directory = parts_dir(upload_id)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{part_number:05d}.part"
    # One temporary file per attempt: a client retrying a part while its first attempt still streams must not
    # write into the same file (the bytes would interleave and the loser's rename would fail).
    temp = directory / f"{part_number:05d}.part.{uuid.uuid4().hex}.incoming"
    digest = hashlib.md5(usedforsecurity=False)
    written = 0
    with temp.open("wb") as target:
        while True:
            chunk = body.read(COPY_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > max_bytes:
                target.close()
                temp.unlink(missing_ok=True)
                return None
            digest.update(chunk)
            target.write(chunk)
    etag = digest.hexdigest()
    temp.replace(final)  # a retried part replaces the earlier attempt atomically
    # The ETag goes in after the bytes, and atomically: a reader in between sees the earlier attempt's ETag, which
    # a completion then refuses (etag_mismatch, retryable) rather than accepting bytes under the wrong ETag.
    etag_temp = directory / f"{part_number:05d}.etag.{uuid.uuid4().hex}.incoming"
    etag_temp.write_text(etag)
    etag_temp.replace(directory / f"{part_number:05d}.etag")
    return StoredPart(part_number, etag, written)


def fs_list_parts(upload_id: Any) -> dict[int, StoredPart]:
    directory = parts_dir(upload_id)
    parts: dict[int, StoredPart] = {}
    if not directory.is_dir():
        return parts
    for path in directory.glob("*.part"):
        number = int(path.stem)
        etag_file = directory / f"{number:05d}.etag"
        if etag_file.exists():
            parts[number] = StoredPart(number, etag_file.read_text().strip(), path.stat().st_size)
    return parts


def fs_assemble(upload_id: Any, part_numbers: list[int], key: str) -> tuple[int, str]:
    """Concatenate parts into the storage key; returns (size, sha256), hashed on the way."""
    directory = parts_dir(upload_id)
    target = Path(default_storage.path(key))
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for number in part_numbers:
            with (directory / f"{number:05d}.part").open("rb") as part:
                while chunk := part.read(COPY_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
    return size, digest.hexdigest()


def fs_discard(upload_id: Any) -> None:
    shutil.rmtree(parts_dir(upload_id), ignore_errors=True)


# --- S3 ----------------------------------------------------------------------------------------------------
def s3_start(key: str) -> str:
    response = s3_client().create_multipart_upload(
        Bucket=s3_bucket(), Key=s3_key(key), ContentType="application/octet-stream"
    )
    return str(response["UploadId"])


def s3_part_url(key: str, s3_upload_id: str, part_number: int, expires_in: int) -> str:
    return str(
        s3_client().generate_presigned_url(
            "upload_part",
            Params={"Bucket": s3_bucket(), "Key": s3_key(key), "UploadId": s3_upload_id, "PartNumber": part_number},
            ExpiresIn=expires_in,
        )
    )


def s3_list_parts(key: str, s3_upload_id: str) -> dict[int, StoredPart]:
    client = s3_client()
    parts: dict[int, StoredPart] = {}
    marker = 0
    while True:
        response = client.list_parts(
            Bucket=s3_bucket(), Key=s3_key(key), UploadId=s3_upload_id, PartNumberMarker=marker, MaxParts=1000
        )
        for part in response.get("Parts", []):
            number = int(part["PartNumber"])
            parts[number] = StoredPart(number, clean_etag(part["ETag"]), int(part["Size"]))
        if not response.get("IsTruncated"):
            return parts
        marker = int(response["NextPartNumberMarker"])


def s3_complete(key: str, s3_upload_id: str, parts: list[StoredPart]) -> None:
    s3_client().complete_multipart_upload(
        Bucket=s3_bucket(),
        Key=s3_key(key),
        UploadId=s3_upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": f'"{p.etag}"'} for p in parts]},
    )


def s3_abort(key: str, s3_upload_id: str) -> None:
    client = s3_client()
    with contextlib.suppress(client.exceptions.NoSuchUpload):  # already gone: aborting is idempotent
        client.abort_multipart_upload(Bucket=s3_bucket(), Key=s3_key(key), UploadId=s3_upload_id)


def s3_object_size(key: str) -> int | None:
    client = s3_client()
    try:
        return int(client.head_object(Bucket=s3_bucket(), Key=s3_key(key))["ContentLength"])
    except client.exceptions.ClientError:
        return None


class S3RangeReader(io.RawIOBase):
    """A seekable read-only file over an S3 object using ranged GETs, so validators (Pillow, PyAV, the polyglot
    scan) read only what they need, without downloading the object first."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.size, self.pos = s3_client(), s3_bucket(), s3_key(key), size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        end = min(self.size, self.pos + len(buffer)) - 1
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end}")["Body"]
        data = body.read()
        body.close()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


@contextmanager
def open_stored(key: str, size: int) -> Iterator[IO[bytes]]:
    """A seekable binary reader for a stored object: the local file on filesystem storage, ranged GETs in
    1 MiB windows on S3."""
    if is_s3():
        reader = io.BufferedReader(S3RangeReader(key, size), buffer_size=COPY_CHUNK)
        try:
            yield reader
        finally:
            reader.close()
    else:
        with open(default_storage.path(key), "rb") as handle:
            yield handle


def stored_sha256(key: str) -> str:
    """SHA-256 of a stored object, streamed in 8 MiB reads (S3: one GET; filesystem: the local file)."""
    digest = hashlib.sha256()
    if is_s3():
        body = s3_client().get_object(Bucket=s3_bucket(), Key=s3_key(key))["Body"]
        for chunk in body.iter_chunks(8 * COPY_CHUNK):
            digest.update(chunk)
        body.close()
    else:
        with open(default_storage.path(key), "rb") as handle:
            while chunk := handle.read(8 * COPY_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
