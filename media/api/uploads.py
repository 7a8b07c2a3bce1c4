"""The direct upload's body handler: the file is hashed, sniffed and validated as Django's multipart parser
hands it over (media.validation.StreamInspector) and, on S3, sent on to storage at the same time.

Django's default handlers spool a large upload to a temporary file, after which validation, hashing and the
copy to storage each read it again; here every byte is touched once on the way in:

* each chunk goes to the inspector (SHA-256, sniffing, the JPEG walk and decode, the tail for the ZIP check);
* it is kept in memory (at most HLEKKR_MAX_DIRECT_UPLOAD_BYTES: the view refuses a larger Content-Length before
  reading, and bytes past the limit are counted, not kept; the service answers 413), for the fallback write;
* on S3, when the file's length is known before its bytes arrive (the form's last part: its length is the
  request's Content-Length minus what precedes it and the closing boundary, `file_length_from_prefix`), it is
  streamed into one PutObject as it arrives (media.storage.StreamingPut). The last chunk is held back until the
  service has accepted the upload (every check passed, not a duplicate), so a refusal or a duplicate never creates
  an object. Otherwise (fields after the file, other object parameters, storage refusing the connection) the
  service writes the kept bytes in one request once they passed.
"""

from __future__ import annotations

import bisect
import io
import logging
import uuid
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.utils.http import parse_header_parameters

from media import multipart, storage
from media.validation import StreamInspector

logger = logging.getLogger(__name__)
FIELD = "file"
PEEK_BYTES = 64 * 1024


class InspectedUpload(UploadedFile):
    """An uploaded file whose bytes were inspected while they arrived; `inspector.finish()` has the verdict.
    `relay` (when not None) holds an S3 PutObject of exactly these bytes, complete but for its last chunk, to the
    key of `media_id`; closing the file aborts it unless the service committed it."""

    def __init__(self, buffer: io.BufferedReader, *, name: str, content_type: str, size: int, charset: str | None,
                 inspector: StreamInspector, complete: bool, media_id: uuid.UUID,
                 relay: storage.StreamingPut | None) -> None:  # fmt: skip
        super().__init__(buffer, name, content_type, size, charset)
        self.inspector = inspector
        self.complete = complete  # False: bytes past the size limit were dropped (the service refuses it)
        self.media_id = media_id
        self.relay = relay

    def close(self) -> None:
        if self.relay is not None:
            self.relay.abort()
        super().close()


class ChunkedBuffer(multipart.SeekableReader):
    """A seekable read-only file over the chunks as they arrived: the upload is kept once, never joined into a
    second copy."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self.chunks = chunks
        self.starts: list[int] = []
        total = 0
        for chunk in chunks:
            self.starts.append(total)
            total += len(chunk)
        self.size, self.pos = total, 0

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.size:
            return 0
        index = bisect.bisect_right(self.starts, self.pos) - 1
        view, written = memoryview(buffer).cast("B"), 0
        while written < len(view) and index < len(self.chunks):
            chunk, offset = self.chunks[index], self.pos - self.starts[index]
            piece = chunk[offset : offset + len(view) - written]
            view[written : written + len(piece)] = piece
            written += len(piece)
            self.pos += len(piece)
            index += 1
        return written


class _Replay:
    """The request body with its peeked start put back in front."""

    def __init__(self, prefix: bytes, stream: Any) -> None:
        self.prefix, self.stream = prefix, stream

    def read(self, size: int = -1) -> bytes:
        if not self.prefix:
            return bytes(self.stream.read(size))
        if size is None or size < 0:
            data, self.prefix = self.prefix + self.stream.read(), b""
            return data
        data, self.prefix = self.prefix[:size], self.prefix[size:]
        return data

    def readline(self, size: int = -1) -> bytes:
        if not self.prefix:
            return bytes(self.stream.readline(size))
        end = self.prefix.find(b"\n")
        if end != -1 and (size is None or size < 0 or end < size):
            data, self.prefix = self.prefix[: end + 1], self.prefix[end + 1 :]
            return data
        return self.read(size)


def file_length_from_prefix(prefix: bytes, *, boundary: bytes, content_length: int) -> int | None:
    """The length of the `file` part's bytes if it is the body's last part, from the start of the body: every
    part before it must lie in `prefix`. None when that cannot be known (the caller then verifies nothing and
    just does not stream). A wrong guess (a field after the file) is caught by the byte count at the end."""
    delimiter = b"--" + boundary
    start = prefix.find(delimiter + b"\r\n")
    while start != -1:
        headers_end = prefix.find(b"\r\n\r\n", start)
        if headers_end == -1:
            return None
        headers = prefix[start + len(delimiter) + 2 : headers_end].decode("latin-1").lower()
        data_start = headers_end + 4
        for line in headers.split("\r\n"):
            if line.startswith("content-disposition:"):
                _value, params = parse_header_parameters(line.split(":", 1)[1].strip())
                if params.get("name") == FIELD and "filename" in params:
                    length = content_length - data_start - len(b"\r\n" + delimiter + b"--\r\n")
                    return length if length > 0 else None
        start = prefix.find(b"\r\n" + delimiter + b"\r\n", data_start)
        start = start + 2 if start != -1 else -1
    return None


def prepare_streaming(request: HttpRequest) -> int | None:
    """Peek at the body's start (put back for the parser) and return the file's length when it can be streamed
    to storage while it arrives; None otherwise."""
    try:
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    _ctype, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "").encode("latin-1", "replace")
    if not boundary or content_length <= 0 or request._read_started:  # type: ignore[attr-defined]
        return None
    stream = request._stream
    prefix = b""
    while len(prefix) < min(PEEK_BYTES, content_length):
        data = stream.read(min(PEEK_BYTES, content_length) - len(prefix))
        if not data:
            break
        prefix += data
    request._stream = _Replay(prefix, stream)  # type: ignore[assignment]
    return file_length_from_prefix(prefix, boundary=boundary, content_length=content_length)


class InspectingUploadHandler(FileUploadHandler):
    """Keeps each uploaded file in memory, feeds it to a StreamInspector chunk by chunk and, when `stream_key`
    and `expected_length` are given, relays the `file` field to storage as it arrives."""

    # fewer parser round trips (and copies) than Django's 64 KiB; the size limit bounds memory anyway
    chunk_size = 1024 * 1024

    def __init__(self, request: Any = None, *, max_bytes: int, owner_key: Any = None,
                 expected_length: int | None = None) -> None:  # fmt: skip
        super().__init__(request)
        self.max_bytes = max_bytes
        self.owner_key = owner_key  # media_id -> storage key, or None: never stream
        self.expected_length = expected_length
        self.chunks: list[bytes] = []
        self.inspector: StreamInspector | None = None
        self.received = 0
        self.media_id = uuid.uuid4()
        self.relay: storage.StreamingPut | None = None
        self.relaying = False

    def new_file(self, field_name: str, file_name: str, content_type: str, content_length: int | None,
                 charset: str | None = None, content_type_extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self._drop_relay()
        self.chunks = []
        self.inspector = StreamInspector(declared_content_type=content_type)
        self.received = 0
        self.media_id = uuid.uuid4()
        self.relaying = (
            field_name == FIELD
            and self.owner_key is not None
            and self.expected_length is not None
            and self.expected_length <= self.max_bytes
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.inspector is not None
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self._drop_relay()
            return None  # refused by size in the service; keep counting, stop keeping and inspecting
        self.inspector.feed(raw_data)
        self.chunks.append(raw_data)
        if self.relaying:
            self._relay(raw_data)
        return None

    def _relay(self, raw_data: bytes) -> None:
        inspector = self.inspector
        assert inspector is not None
        if inspector.refusal is not None or self.received > (self.expected_length or 0):
            self._drop_relay()  # refused, or not the last part after all: nothing to store from here
            return
        try:
            if self.relay is None:
                if not inspector.mime:
                    return  # the type is not known yet; the first bytes go out with the PUT's start
                key = self.owner_key(self.media_id)
                if not storage.can_stream_put(key):
                    self.relaying = False
                    return
                self.relay = storage.StreamingPut(key, size=self.expected_length or 0, content_type=inspector.mime)
                for chunk in self.chunks:
                    self.relay.write(chunk)
                return
            self.relay.write(raw_data)
        except OSError as exc:
            # The service writes the kept bytes after the stream instead (and answers 503 if storage stays away).
            logger.warning("streaming to storage failed, writing after the upload instead: %s", exc)
            self._drop_relay()

    def _drop_relay(self) -> None:
        self.relaying = False
        if self.relay is not None:
            self.relay.abort()
            self.relay = None

    def file_complete(self, file_size: int) -> InspectedUpload:
        assert self.inspector is not None
        if self.relay is not None and file_size != self.expected_length:
            self._drop_relay()
        kept, self.chunks = self.chunks, []
        upload = InspectedUpload(
            io.BufferedReader(ChunkedBuffer(kept), buffer_size=1024 * 1024),
            name=self.file_name or "",
            content_type=self.content_type or "",
            size=file_size,
            charset=self.charset,
            inspector=self.inspector,
            complete=self.received <= self.max_bytes,
            media_id=self.media_id,
            relay=self.relay,
        )
        self.relay, self.relaying = None, False
        return upload

    def upload_interrupted(self) -> None:
        self._drop_relay()
        if self.inspector is not None:
            self.inspector.close()
