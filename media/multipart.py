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
from concurrent.futures import ThreadPoolExecutor
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


def fs_assemble(upload_id: Any, part_numbers: list[int], out: IO[bytes], *, on_chunk: Any) -> int:
    """Concatenate parts into `out` (the object's file), handing every chunk to `on_chunk` on the way: the one
    pass in which the completion hashes and validates (media.validation.StreamInspector). Returns the size."""
    directory = parts_dir(upload_id)
    size = 0
    for number in part_numbers:
        with (directory / f"{number:05d}.part").open("rb") as part:
            while chunk := part.read(COPY_CHUNK):
                on_chunk(chunk)
                size += len(chunk)
                out.write(chunk)
    return size


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


# What a completion reads of an S3 object whose checks need only its ends (audio and video: the container's
# header and first packets, the RIFF length, a ZIP directory at the end): two ranged GETs.
HEAD_WINDOW = 4 * 1024 * 1024
TAIL_WINDOW = 1024 * 1024


class SeekableReader(io.RawIOBase):
    """A read-only, seekable raw file of a known `size`; subclasses fill `readinto` from `pos`."""

    size = 0
    pos = 0

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


class S3EndsReader(SeekableReader):
    """A seekable read-only file over an S3 object that fetches its first HEAD_WINDOW and last TAIL_WINDOW bytes
    up front (two ranged GETs) and anything else in 1 MiB ranged GETs, so validators that look at the ends
    (Pillow's header, PyAV's probe, the ZIP and RIFF checks) cost two requests however large the object is."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.size, self.pos = s3_client(), s3_bucket(), s3_key(key), size, 0
        ends = [(0, min(size, HEAD_WINDOW))]
        tail_start = max(0, size - TAIL_WINDOW)
        if tail_start >= HEAD_WINDOW:
            ends.append((tail_start, size))
        # Both ends at once: the completion waits for the slower of the two, not their sum.
        with ThreadPoolExecutor(max_workers=len(ends)) as pool:
            fetched = list(pool.map(lambda span: self._get(*span), ends))
        self.windows: list[tuple[int, bytes]] = [
            (start, data) for (start, _end), data in zip(ends, fetched, strict=True)
        ]

    def _get(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        for start, data in self.windows:
            if start <= self.pos < start + len(data):
                break
        else:
            start = self.pos
            data = self._get(start, min(self.size, start + COPY_CHUNK))
            self.windows = [*self.windows[:2], (start, data)]  # keep the ends, plus the latest middle window
        chunk = data[self.pos - start : self.pos - start + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


@contextmanager
def open_stored(key: str, size: int) -> Iterator[IO[bytes]]:
    """A seekable binary reader for a stored object: the local file on filesystem storage; on S3 its two ends
    fetched once (S3EndsReader), the middle only if a validator asks for it."""
    if is_s3():
        reader = io.BufferedReader(S3EndsReader(key, size), buffer_size=64 * 1024)
        try:
            yield reader
        finally:
            reader.close()
    else:
        with open(default_storage.path(key), "rb") as handle:
            yield handle


def iter_stored(key: str) -> Iterator[bytes]:
    """A stored object's bytes in 1 MiB chunks, from one GET (S3) or the local file."""
    if is_s3():
        body = s3_client().get_object(Bucket=s3_bucket(), Key=s3_key(key))["Body"]
        try:
            yield from body.iter_chunks(COPY_CHUNK)
        finally:
            body.close()
    else:
        with open(default_storage.path(key), "rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                yield chunk
