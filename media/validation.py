"""Validation of uploaded bytes: what the file is comes from the bytes, never from the client's word.

`validate_media(fh, size=..., declared_content_type=...)` takes a seekable binary file (a spooled upload, a
local file, or a ranged reader over an S3 object) and either returns what the file is or raises a HlekkrError
with a documented code (docs/media.md):

* ``empty_file`` (400), ``payload_too_large`` (413, raised by the services from the limits in media/conf.py);
* ``unsupported_media_type`` (415): the sniffed type is not on the allowlist (HTML, SVG, ZIP, ... named .jpg);
* ``content_type_mismatch`` (415): the declared content type names another type than the bytes;
* ``polyglot_file`` (415): a ZIP hides inside or after the media (JPEG/ZIP polyglots, trailing archives);
* ``too_many_pixels`` (400): the header declares more pixels than the limit; refused before decoding;
* ``corrupt_file`` (400): truncated or undecodable.

Nothing here reads a whole file into memory: sniffing reads the first 8 KiB, the polyglot checks scan in
1 MiB windows, images are verified and decoded at a reduced scale where the format allows it.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import tempfile
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO, Any

import magic
import pillow_heif
from django.conf import settings
from PIL import Image

from hlekkr.exceptions import HlekkrError, UnsupportedMediaType, ValidationFailed
from media import conf

pillow_heif.register_heif_opener()  # HEIC/HEIF through libheif, registered once at import

SNIFF_BYTES = 8192
SCAN_CHUNK = 1024 * 1024
# Bytes after a JPEG's EOI that are tolerated when they are not padding (some encoders leave a few).
MAX_JPEG_TRAILER = 16 * 1024

# sniffed MIME (as libmagic names it) -> (canonical MIME, kind)
ALLOWED: dict[str, tuple[str, str]] = {
    "image/jpeg": ("image/jpeg", "image"),
    "image/png": ("image/png", "image"),
    "image/webp": ("image/webp", "image"),
    "image/gif": ("image/gif", "image"),
    "image/tiff": ("image/tiff", "image"),
    "image/heic": ("image/heic", "image"),
    "image/heif": ("image/heic", "image"),
    "video/mp4": ("video/mp4", "video"),
    "video/quicktime": ("video/quicktime", "video"),
    "video/webm": ("video/webm", "video"),
    "audio/mpeg": ("audio/mpeg", "audio"),
    "audio/x-wav": ("audio/wav", "audio"),
    "audio/wav": ("audio/wav", "audio"),
    "audio/x-m4a": ("audio/mp4", "audio"),
    "audio/mp4": ("audio/mp4", "audio"),
    "audio/flac": ("audio/flac", "audio"),
    "audio/x-flac": ("audio/flac", "audio"),
    "audio/ogg": ("audio/ogg", "audio"),
    "application/ogg": ("audio/ogg", "audio"),
    "audio/x-vorbis+ogg": ("audio/ogg", "audio"),
    "audio/x-opus+ogg": ("audio/ogg", "audio"),
}

# Declared content types a client may send for each canonical type (harmless aliases). MP4-family containers
# accept each other's names because one container holds either audio or video.
_MP4_FAMILY = {"video/mp4", "audio/mp4", "audio/x-m4a", "audio/m4a", "video/x-m4v", "audio/aac"}
DECLARED_ALIASES: dict[str, set[str]] = {
    "image/jpeg": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "image/png": {"image/png", "image/x-png"},
    "image/webp": {"image/webp"},
    "image/gif": {"image/gif"},
    "image/tiff": {"image/tiff", "image/tif", "image/x-tiff"},
    "image/heic": {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"},
    "video/mp4": _MP4_FAMILY | {"video/quicktime"},
    "video/quicktime": {"video/quicktime", "video/mov", "video/x-quicktime", "video/mp4"},
    "video/webm": {"video/webm", "audio/webm", "video/x-matroska"},
    "audio/mpeg": {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mp3", "audio/x-mpeg"},
    "audio/wav": {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/x-pn-wav"},
    "audio/mp4": _MP4_FAMILY,
    "audio/flac": {"audio/flac", "audio/x-flac"},
    "audio/ogg": {"audio/ogg", "application/ogg", "audio/vorbis", "audio/opus", "audio/x-ogg"},
}
# Declarations that say "I don't know": the sniffed type decides alone.
GENERIC_DECLARATIONS = {"", "application/octet-stream", "binary/octet-stream", "application/x-download"}

ALL_DECLARABLE = set().union(*DECLARED_ALIASES.values())


@dataclass(frozen=True)
class MediaFacts:
    mime_type: str
    kind: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


# --- filenames ---------------------------------------------------------------------------------------------
def sanitize_filename(name: str | None, *, fallback: str = "upload") -> str:
    """Basename only, no control or format characters, at most 255 characters (extension kept).

    `../../etc/passwd` becomes `passwd`; a name that sanitises to nothing becomes `fallback`. The result is
    only ever displayed; storage keys never contain it.
    """
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))
    text = text.strip().lstrip(".").strip()
    if not text:
        return fallback
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = stem[: 255 - len(ext) - 1] + "." + ext if dot and 0 < len(ext) <= 16 else text[:255]
    return text


# --- declared types ----------------------------------------------------------------------------------------
def normalise_content_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def check_declared_allowed(declared: str | None) -> str:
    """For multipart start: the declared type must name an allowed type (the bytes are checked at completion)."""
    value = normalise_content_type(declared)
    if value not in ALL_DECLARABLE and value not in GENERIC_DECLARATIONS:
        raise UnsupportedMediaType(
            f"Content type {value or '(none)'} is not accepted.",
            code="unsupported_media_type",
            details={"declared": value, "allowed": sorted(DECLARED_ALIASES)},
        )
    return value


def check_declared_matches(declared: str | None, sniffed_canonical: str) -> None:
    value = normalise_content_type(declared)
    if value in GENERIC_DECLARATIONS:
        return
    if value not in DECLARED_ALIASES.get(sniffed_canonical, {sniffed_canonical}):
        raise UnsupportedMediaType(
            f"The declared content type {value} does not match the file's bytes ({sniffed_canonical}).",
            code="content_type_mismatch",
            details={"declared": value, "detected": sniffed_canonical},
        )


# --- sniffing ----------------------------------------------------------------------------------------------
def sniff(head: bytes) -> tuple[str, str]:
    """(canonical MIME, kind) from the first bytes, or 415 unsupported_media_type."""
    if not head:
        raise ValidationFailed("The file is empty.", code="empty_file")
    detected = magic.from_buffer(head, mime=True)
    allowed = ALLOWED.get(detected)
    if allowed is None:
        raise UnsupportedMediaType(
            f"Files of type {detected} are not accepted.",
            code="unsupported_media_type",
            details={"detected": detected, "allowed": sorted({c for c, _ in ALLOWED.values()})},
        )
    return allowed


def _read_at(fh: IO[bytes], offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


# --- polyglots ---------------------------------------------------------------------------------------------
_EOCD = b"PK\x05\x06"
_LOCAL_HEADER = b"PK\x03\x04"
_CENTRAL_HEADER = b"PK\x01\x02"


def _zip_tail(fh: IO[bytes], size: int) -> bool:
    """True when the file ends like a ZIP archive: an end-of-central-directory record whose comment length
    reaches exactly the end of the file (what unzip looks for in the last 64 KiB)."""
    window = min(size, 65_535 + 22)
    tail = _read_at(fh, size - window, window)
    pos = tail.rfind(_EOCD)
    while pos != -1:
        if pos + 22 <= len(tail):
            (comment_len,) = struct.unpack("<H", tail[pos + 20 : pos + 22])
            if pos + 22 + comment_len == len(tail):
                return True
        pos = tail.rfind(_EOCD, 0, pos)
    return False


@dataclass(frozen=True)
class _JpegShape:
    end: int | None  # offset just after the EOI that ends the last scan; None: the stream ends first (truncated)
    scans: int  # SOS markers
    skeleton: int  # bytes of everything but entropy-coded data (see _JpegWalk.skeleton)


def _jpeg_shape(fh: IO[bytes], size: int) -> _JpegShape:
    """Walk the JPEG's marker segments and entropy-coded data in windows (the whole-file twin of _JpegWalk)."""
    reader = _Window(fh, size)
    pos, scans, skeleton = 2, 0, 2  # after SOI
    while pos < size:
        if reader.byte(pos) != 0xFF:
            break
        marker = reader.byte(pos + 1)
        if marker is None:
            break
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return _JpegShape(pos + 2, scans, skeleton + 2)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            pos += 2
            skeleton += 2
            continue
        length_bytes = reader.slice(pos + 2, 2)
        if len(length_bytes) < 2:
            break
        (length,) = struct.unpack(">H", length_bytes)
        pos += 2 + length
        skeleton += 2 + length
        if marker == 0xDA:  # SOS: skip entropy-coded data up to the next real marker
            scans += 1
            next_marker = reader.next_marker(pos)
            if next_marker is None:
                break
            pos = next_marker
    return _JpegShape(None, scans, skeleton)


def _check_jpeg_limits(scans: int, skeleton: int) -> None:
    """What a JPEG may ask of its decoder: every scan makes the decoder visit every block again, so a few KiB of
    repeated scan headers cost seconds of CPU (1,000 scans of a 24 MP image: 0.85 s even with no scan data), and
    marker segments beyond SKELETON_CAP are kept by nothing real."""
    if scans > MAX_JPEG_SCANS:
        raise ValidationFailed(
            f"The JPEG has more than {MAX_JPEG_SCANS} scans.", code="corrupt_file", details={"reason": "too_many_scans"}
        )
    if skeleton > SKELETON_CAP:
        raise ValidationFailed(
            "The JPEG carries more marker segments than any image needs.",
            code="corrupt_file",
            details={"reason": "marker_segments"},
        )


class _Window:
    """Random access over a file in 1 MiB windows (keeps memory flat for large files)."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh, self.size = fh, size
        self.start, self.data = 0, b""

    def _load(self, offset: int) -> None:
        self.start = offset
        self.data = _read_at(self.fh, offset, SCAN_CHUNK)

    def byte(self, offset: int) -> int | None:
        if offset >= self.size:
            return None
        if not (self.start <= offset < self.start + len(self.data)):
            self._load(offset)
        return self.data[offset - self.start]

    def slice(self, offset: int, length: int) -> bytes:
        if not (self.start <= offset and offset + length <= self.start + len(self.data)):
            self._load(offset)
        return self.data[offset - self.start : offset - self.start + length]

    def next_marker(self, offset: int) -> int | None:
        while offset < self.size:
            if not (self.start <= offset < self.start + len(self.data)) or offset + 1 >= self.start + len(self.data):
                self._load(offset)
            rel = self.data.find(b"\xff", offset - self.start)
            if rel == -1:
                offset = self.start + len(self.data)
                continue
            if rel + 1 >= len(self.data):
                if self.start + rel + 1 >= self.size:
                    return None
                self._load(self.start + rel)
                continue
            nxt = self.data[rel + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                offset = self.start + rel + (2 if nxt != 0xFF else 1)
                continue
            return self.start + rel
        return None


def _contains(fh: IO[bytes], start: int, end: int, needles: tuple[bytes, ...]) -> bool:
    overlap = max(len(n) for n in needles) - 1
    pos = start
    while pos < end:
        chunk = _read_at(fh, pos, min(SCAN_CHUNK, end - pos) + overlap)
        if any(n in chunk for n in needles):
            return True
        pos += SCAN_CHUNK
    return False


def _is_padding(fh: IO[bytes], start: int, end: int) -> bool:
    pos = start
    while pos < end:
        chunk = _read_at(fh, pos, min(SCAN_CHUNK, end - pos))
        if chunk.strip(b"\x00\xff"):
            return False
        pos += SCAN_CHUNK
    return True


def _png_end(fh: IO[bytes], size: int) -> int | None:
    """Offset just after the IEND chunk, walking chunk headers (8 bytes each); None if the file ends first."""
    pos = 8  # after the signature
    while pos + 12 <= size:
        header = _read_at(fh, pos, 8)
        (length,) = struct.unpack(">I", header[:4])
        pos += 12 + length
        if header[4:8] == b"IEND":
            return pos if pos <= size else None
    return None


_MARKUP = (b"<script", b"<html", b"<svg", b"<iframe", b"<?php", b"<!doctype", b"<body", b"javascript:")
_MARKUP_LONGEST = max(_MARKUP, key=len)


def _markup_in(fh: IO[bytes], start: int, end: int) -> bool:
    """Markup a browser or interpreter would act on (checked case-insensitively in the bytes)."""
    pos = start
    while pos < end:
        chunk = _read_at(fh, pos, min(SCAN_CHUNK, end - pos) + len(_MARKUP_LONGEST)).lower()
        if any(needle in chunk for needle in _MARKUP):
            return True
        pos += SCAN_CHUNK
    return False


def check_polyglot(fh: IO[bytes], size: int, mime: str) -> None:
    """Refuse files that are also ZIP archives, and JPEGs or PNGs carrying significant data (or any markup)
    after their end marker."""
    if _zip_tail(fh, size):
        raise UnsupportedMediaType(
            "The file is also a ZIP archive (polyglot).", code="polyglot_file", details={"detected": mime}
        )
    if mime == "image/png":
        png_end = _png_end(fh, size)
        if png_end is not None and png_end < size and _markup_in(fh, png_end, size):
            raise UnsupportedMediaType(
                "Markup follows the end of the PNG image (polyglot).",
                code="polyglot_file",
                details={"trailing": size - png_end},
            )
        return
    if mime != "image/jpeg":
        return
    shape = _jpeg_shape(fh, size)
    end = shape.end
    if end is None:
        raise ValidationFailed("The JPEG is truncated: it has no end-of-image marker.", code="corrupt_file")
    if end < size and _markup_in(fh, end, size):
        raise UnsupportedMediaType(
            "Markup follows the end of the JPEG image (polyglot).",
            code="polyglot_file",
            details={"trailing": size - end},
        )
    if end < size:
        if _contains(fh, end, size, (_LOCAL_HEADER, _EOCD, _CENTRAL_HEADER)):
            raise UnsupportedMediaType(
                "A ZIP archive follows the JPEG image (polyglot).",
                code="polyglot_file",
                details={"trailing": size - end},
            )
        if size - end > MAX_JPEG_TRAILER and not _is_padding(fh, end, size):
            raise UnsupportedMediaType(
                "Significant data follows the end of the JPEG image.",
                code="polyglot_file",
                details={"trailing": size - end},
            )
    _check_jpeg_limits(shape.scans, shape.skeleton)


# --- decoding checks ---------------------------------------------------------------------------------------
def _too_many_pixels(width: int, height: int) -> ValidationFailed:
    limit = conf.max_image_pixels()
    return ValidationFailed(
        f"The image declares {width} x {height} pixels; the limit is {limit}.",
        code="too_many_pixels",
        details={"width": width, "height": height, "max_pixels": limit},
    )


def _corrupt(message: str, exc: BaseException | None = None) -> ValidationFailed:
    details = {"reason": type(exc).__name__} if exc is not None else {}
    return ValidationFailed(message, code="corrupt_file", details=details)


def open_image_header(fh: IO[bytes]) -> tuple[Any, int, int]:
    """Open an image from its header and refuse it before any decoding if it declares too many pixels."""
    limit = conf.max_image_pixels()
    # Pillow's own bomb guard stays armed (past twice its default limit it raises while reading the header);
    # ours is the limit that counts, checked from the header size right after open(), before decoding. The
    # global Image.MAX_IMAGE_PIXELS is left alone: worker threads share it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        fh.seek(0)
        try:
            image = Image.open(fh)
        except Image.DecompressionBombError:
            raise ValidationFailed("The image declares more pixels than the limit.", code="too_many_pixels") from None
        except Exception as exc:
            raise _corrupt("The image cannot be read.", exc) from None
    width, height = image.size
    if width * height > limit:
        raise _too_many_pixels(width, height)
    if width <= 0 or height <= 0:
        raise _corrupt("The image has no pixels.")
    return image, width, height


def check_image(fh: IO[bytes], mime: str) -> tuple[int, int]:
    """Header size check before any decoding, then verify() and a decode (reduced scale where possible)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image, width, height = open_image_header(fh)
        frames = int(getattr(image, "n_frames", 1) or 1)
        try:
            image.verify()
        except Exception as exc:
            raise _corrupt("The image is corrupt.", exc) from None
        # verify() leaves the image unusable; reopen to decode. JPEG decodes at 1/8 scale via draft(), which
        # still reads every byte of the scan, so truncation shows.
        fh.seek(0)
        try:
            image = Image.open(fh)
            if mime == "image/jpeg":
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
            if frames > 1:  # animated GIF/WebP/TIFF: decode the last frame too
                image.seek(min(frames, 1000) - 1)
                image.load()
        except Image.DecompressionBombError:
            raise _too_many_pixels(width, height) from None
        except Exception as exc:
            raise _corrupt("The image is truncated or corrupt.", exc) from None
    return width, height


def _check_wav_length(fh: IO[bytes], size: int) -> None:
    header = _read_at(fh, 0, 12)
    if len(header) < 12 or header[:4] not in (b"RIFF", b"RIFX"):
        raise _corrupt("The WAV header is incomplete.")
    (riff_size,) = struct.unpack("<I" if header[:4] == b"RIFF" else ">I", header[4:8])
    # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back; nothing to compare then.
    if riff_size not in (0, 0xFFFFFFFF) and size < riff_size + 8:
        raise _corrupt("The WAV file is truncated (shorter than its header says).")


def check_audio_video(fh: IO[bytes], size: int, mime: str, kind: str) -> MediaFacts:
    """A light probe with PyAV: the container opens, has a stream of the right sort, and its first packets
    decode. Returns facts (kind may turn from video to audio for an audio-only MP4)."""
    import av

    if mime == "audio/wav":
        _check_wav_length(fh, size)
    fh.seek(0)
    try:
        container = av.open(fh, mode="r")
    except Exception as exc:
        raise _corrupt("The audio or video container cannot be read.", exc) from None
    try:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        if video is None and audio is None:
            raise _corrupt("The container has no audio or video stream.")
        if kind == "video" and video is None:
            kind = "audio"
        if kind == "audio" and audio is None:
            raise _corrupt("The audio container has no audio stream.")
        width = height = None
        if kind == "video" and video is not None:
            width = int(video.codec_context.width or 0) or None
            height = int(video.codec_context.height or 0) or None
            if width and height and width * height > conf.max_image_pixels():
                raise _too_many_pixels(width, height)
        stream: Any = video if kind == "video" else audio
        decoded = 0
        try:
            for frame in container.decode(stream):
                del frame
                decoded += 1
                if decoded >= 3:
                    break
        except av.FFmpegError as exc:
            raise _corrupt("The media stream does not decode.", exc) from None
        if decoded == 0:
            raise _corrupt("The media stream holds no decodable frames.")
        duration = None
        if container.duration:
            duration = round(container.duration / av.time_base, 3)
        elif stream.duration and stream.time_base:
            duration = round(float(stream.duration * stream.time_base), 3)
        return MediaFacts(mime, kind, width, height, duration)
    finally:
        container.close()


def validate_media(fh: IO[bytes], *, size: int, declared_content_type: str | None) -> MediaFacts:
    """Every check, cheapest first: empty, allowlist, declared type, polyglot, pixel limit, decode."""
    if size <= 0:
        raise ValidationFailed("The file is empty.", code="empty_file")
    mime, kind = sniff(_read_at(fh, 0, SNIFF_BYTES))
    check_declared_matches(declared_content_type, mime)
    check_polyglot(fh, size, mime)
    if kind == "image":
        width, height = check_image(fh, mime)
        return MediaFacts(mime, kind, width, height)
    return check_audio_video(fh, size, mime, kind)


# --- one pass: validation while the bytes stream ------------------------------------------------------------
# How much of the start is kept for sniffing and the image header. A JPEG's header (everything before its first
# scan) is kept whole, up to HEADER_CAP; past that the inspector falls back to its spool.
HEAD_BYTES = 64 * 1024
HEADER_CAP = 16 * 1024 * 1024
# The ZIP end-of-central-directory search window (_zip_tail): the last 64 KiB plus the record itself.
TAIL_BYTES = 65_535 + 22
# The JPEG's skeleton (every byte but the entropy-coded data, see _JpegWalk) is kept up to this size; a file with
# more marker segments than that is refused (a real JPEG's are a few KiB beyond its header).
SKELETON_CAP = HEADER_CAP + 4 * 1024 * 1024
# Progressive JPEGs have about 10 scans (libjpeg's default script; optimised ones a few more); past this many a
# file is refused (see _check_jpeg_limits).
MAX_JPEG_SCANS = 256
# The spool of formats checked at the end stays in memory up to this size (Django's own default), then disk.
SPOOL_IN_MEMORY = 2_621_440
_ZIP_NEEDLES = (_LOCAL_HEADER, _EOCD, _CENTRAL_HEADER)
# In entropy-coded data, a marker is FF followed by anything but stuffing (00), a restart marker or fill (FF):
# the same rule as _Window.next_marker, found by one C-level search per chunk instead of a loop per FF byte.
_SCAN_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class _JpegWalk:
    """_jpeg_shape as a state machine fed chunk by chunk: walks marker segments and entropy-coded data, finds the
    EOI that ends the last scan, then watches what follows it (markup, ZIP signatures, non-padding bytes) so
    check_polyglot's JPEG rules hold without a second read. Also remembers where the first scan starts, which is
    where the header ends (Pillow's Image.open needs exactly that much), and keeps the file's skeleton: every
    byte but the entropy-coded data of its scans (see decode_skeleton)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.base = 2  # absolute offset of buf[0]; the walk starts after SOI
        self.pos = 2  # absolute offset the walk has reached
        self.skip_to = 0  # end of a segment being skipped
        self.in_scan = False
        self.first_scan: int | None = None  # offset of the first SOS marker
        self.end: int | None = None  # offset just after the EOI
        self.broken = False  # the stream cannot be a JPEG (a byte where a marker must be)
        self.skeleton = bytearray(b"\xff\xd8")  # SOI, every marker segment in order, EOI
        self.skeleton_bytes = 2  # what the skeleton holds or would hold past SKELETON_CAP
        self.scans = 0
        self.trailer = 0
        self.trailer_data = False
        self.trailer_zip = False
        self.trailer_markup = False
        self._carry = b""

    def feed(self, chunk: bytes, offset: int) -> None:
        """`chunk` starts at absolute `offset` (the first two bytes, SOI, are the caller's)."""
        if self.broken:
            return
        if self.end is not None:
            self._watch_trailer(chunk)
            return
        if offset + len(chunk) <= 2:
            return
        if offset < 2:
            chunk = chunk[2 - offset :]
        self.buf += chunk
        self._walk()

    def _walk(self) -> None:
        buf, base = self.buf, self.base
        limit = base + len(buf)
        pos = self.pos
        while True:
            if pos < self.skip_to:  # inside a marker segment (from its marker on): part of the skeleton
                self._keep(buf[pos - base : min(self.skip_to, limit) - base])
                if self.skip_to > limit:
                    pos = limit
                    break
                pos = self.skip_to
            if self.in_scan:  # entropy-coded data: stop at FF followed by anything but 00, RSTn or FF
                match = _SCAN_MARKER.search(buf, pos - base)
                if match is None:
                    # A final FF may start a marker whose second byte is in the next chunk.
                    pos = limit - 1 if buf.endswith(b"\xff") else limit
                    break
                pos, self.in_scan = base + match.start(), False
            if pos + 2 > limit:
                break
            if buf[pos - base] != 0xFF:
                self.broken = True
                return
            marker = buf[pos - base + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker == 0xD9:
                self._keep(bytearray(b"\xff\xd9"))
                self.end = pos + 2
                rest = bytes(buf[self.end - base :])
                self.buf = bytearray()
                if rest:
                    self._watch_trailer(rest)
                return
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # outside a scan: libjpeg skips these, so keep them
                self._keep(buf[pos - base : pos - base + 2])
                pos += 2
                continue
            if pos + 4 > limit:
                break
            (length,) = struct.unpack(">H", buf[pos - base + 2 : pos - base + 4])
            if marker == 0xDA:
                if self.first_scan is None:
                    self.first_scan = pos
                self.in_scan = True
                self.scans += 1
            self.skip_to = pos + 2 + length
        self.pos = pos
        # Keep only what the walk has not passed (at most a marker's few bytes while skipping or scanning).
        keep_from = min(pos, limit) - base
        if keep_from > 0:
            del self.buf[:keep_from]
            self.base += keep_from

    def _keep(self, data: bytearray) -> None:
        self.skeleton_bytes += len(data)
        if self.skeleton_bytes <= SKELETON_CAP:  # past it the file is refused (verdict): stop keeping
            self.skeleton += data

    def _watch_trailer(self, chunk: bytes) -> None:
        self.trailer += len(chunk)
        if not self.trailer_data and chunk.strip(b"\x00\xff"):
            self.trailer_data = True
        window = self._carry + chunk
        if not self.trailer_zip and any(n in window for n in _ZIP_NEEDLES):
            self.trailer_zip = True
        if not self.trailer_markup:
            lowered = window.lower()
            if any(n in lowered for n in _MARKUP):
                self.trailer_markup = True
        self._carry = window[-(len(_MARKUP_LONGEST) - 1) :]

    def verdict(self, size: int) -> None:
        """check_polyglot's JPEG rules, in its order, from what the walk saw."""
        if self.end is None:
            raise ValidationFailed("The JPEG is truncated: it has no end-of-image marker.", code="corrupt_file")
        details = {"trailing": size - self.end}
        if self.trailer and self.trailer_markup:
            raise UnsupportedMediaType(
                "Markup follows the end of the JPEG image (polyglot).", code="polyglot_file", details=details
            )
        if self.trailer and self.trailer_zip:
            raise UnsupportedMediaType(
                "A ZIP archive follows the JPEG image (polyglot).", code="polyglot_file", details=details
            )
        if self.trailer > MAX_JPEG_TRAILER and self.trailer_data:
            raise UnsupportedMediaType(
                "Significant data follows the end of the JPEG image.", code="polyglot_file", details=details
            )
        _check_jpeg_limits(self.scans, self.skeleton_bytes)


def decode_skeleton(skeleton: bytes, width: int, height: int) -> BaseException | None:
    """check_image's 1/8-scale decode, run on the JPEG's skeleton (_JpegWalk.skeleton: its scans with no
    entropy-coded data); returns the decoder's error or None.

    Why that is the same verdict at ~2 % of the cost: libjpeg treats damage inside entropy-coded data as a
    warning (it resynchronises and fills what it cannot read), never as an error, so what makes a JPEG fail to
    decode is in its marker segments: the frame, the tables, each scan's header and parameters, the tables
    between progressive scans, and their order. The skeleton keeps all of those byte for byte, and the decoder
    runs every scan over every block as before, with nothing to read. tests/media/test_media_streaming.py holds
    the two to the same verdicts on flipped, cut and re-marked baseline, progressive, restart-interval and
    arithmetic-coded JPEGs (on 8,500 random mutations when this was written, they never differed). The full
    decode still happens in the analysis worker, which decodes every pixel anyway."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(skeleton))
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
    except Exception as exc:
        return exc
    return None


@dataclass(frozen=True)
class Inspected:
    facts: MediaFacts
    sha256: str
    size: int


class StreamInspector:
    """Hashes, sniffs and validates bytes as they stream past, once: `feed()` every chunk in order, then
    `finish()` returns what the file is (or raises the same refusal validate_media would, in the same order).

    JPEG, the common case, is validated entirely in the stream (marker walk, trailer rules, header pixel limit,
    the 1/8-scale decode of its skeleton at the end: decode_skeleton). Formats whose decoders need random access
    (PNG, GIF, WebP, TIFF, HEIC, audio and video) are written to `spool` as they pass and checked from that local
    copy by validate_media at the end; the caller may pass its own local file as the spool (the assembled
    multipart file). `refusal` is set as soon as the first bytes settle the matter (type not allowed, declared
    type wrong, too many pixels), so callers can stop storing early; finish() raises it."""

    def __init__(self, *, declared_content_type: str | None, spool: IO[bytes] | None = None) -> None:
        self.declared = declared_content_type
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = bytearray()
        self.tail = bytearray()
        self.mime = ""
        self.kind = ""
        self.refusal: HlekkrError | None = None
        self._spool = spool
        self._own_spool = spool is None
        self._spooling = False
        self._jpeg: _JpegWalk | None = None
        self._decodable = False  # a single-frame JPEG whose header Pillow read: its skeleton is decoded at the end
        self._header_done = False
        self._width = self._height = 0

    # feeding -------------------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        offset = self.size
        self.size += len(chunk)
        self.digest.update(chunk)
        self.tail += chunk
        if len(self.tail) > 2 * TAIL_BYTES:
            del self.tail[: len(self.tail) - TAIL_BYTES]
        if self.refusal is not None and self.refusal.code != "too_many_pixels":
            return  # refused from the head: nothing more to learn (the hash and size still count)
        if not self.mime:
            self.head += chunk
            if len(self.head) >= SNIFF_BYTES:
                self._decide()
            return
        self._route(chunk, offset)

    def _decide(self) -> None:
        """Sniff the head and choose the in-stream path (JPEG) or the spool; replays the head into it."""
        try:
            self.mime, self.kind = sniff(bytes(self.head[:SNIFF_BYTES]))
            check_declared_matches(self.declared, self.mime)
        except HlekkrError as error:
            self.refusal = error
            self.mime = self.mime or "refused"
            self.head = bytearray()
            return
        head, self.head = bytes(self.head), bytearray()
        if self.mime == "image/jpeg":
            self._jpeg = _JpegWalk()
            self.head = bytearray()
        else:
            self._start_spool()
        self._route(head, 0)

    def _start_spool(self, replay: bytes = b"") -> None:
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in finish()/close()
                max_size=SPOOL_IN_MEMORY, dir=settings.FILE_UPLOAD_TEMP_DIR
            )
        self._spooling = True
        if replay and self._own_spool:
            self._spool.write(replay)

    def _route(self, chunk: bytes, offset: int) -> None:
        if self._spooling:
            if self._own_spool:
                assert self._spool is not None
                self._spool.write(chunk)
            return
        assert self._jpeg is not None
        walk = self._jpeg
        walk.feed(chunk, offset)
        if not self._header_done:
            self.head += chunk
            if walk.first_scan is not None or walk.broken or walk.end is not None:
                self._open_header()
            elif len(self.head) > HEADER_CAP:
                self._fall_back_to_spool()

    def _open_header(self) -> None:
        """The header is complete: the pixel limit is checked from it."""
        self._header_done = True
        head, self.head = bytes(self.head), bytearray()
        try:
            image, width, height = open_image_header(io.BytesIO(head))
        except HlekkrError as error:
            if error.code == "too_many_pixels":
                self.refusal = error
                return
            # Unreadable from the header alone: let the whole-file path decide, with the same message.
            self._fall_back_to_spool(head)
            return
        self._width, self._height = width, height
        if image.format != "JPEG" or len(image.tile) != 1 or int(getattr(image, "n_frames", 1) or 1) != 1:
            self._fall_back_to_spool(head)  # MPO and other multi-frame JPEGs: check_image's own path
            return
        self._decodable = True

    def _fall_back_to_spool(self, head: bytes | None = None) -> None:
        replay = bytes(self.head) if head is None else head
        self.head = bytearray()
        self._header_done = True
        self._start_spool(replay)

    # the verdict ---------------------------------------------------------------------------------------------
    def finish(self) -> Inspected:
        """Every check that needed the end of the stream, in validate_media's order; raises the refusal."""
        try:
            return self._finish()
        finally:
            self.close()

    def _finish(self) -> Inspected:
        if self.size <= 0:
            raise ValidationFailed("The file is empty.", code="empty_file")
        if not self.mime:
            self._decide()
        if self.refusal is not None and self.refusal.code != "too_many_pixels":
            raise self.refusal
        tail = bytes(self.tail[-TAIL_BYTES:])
        sha256 = self.digest.hexdigest()
        if self._spooling:
            assert self._spool is not None
            self._spool.flush()
            facts = validate_media(self._spool, size=self.size, declared_content_type=self.declared)
            return Inspected(facts, sha256, self.size)
        if _zip_tail(io.BytesIO(tail), len(tail)):
            raise UnsupportedMediaType(
                "The file is also a ZIP archive (polyglot).", code="polyglot_file", details={"detected": self.mime}
            )
        assert self._jpeg is not None
        self._jpeg.verdict(self.size)
        if self.refusal is not None:  # too many pixels: after the polyglot rules, as validate_media orders them
            raise self.refusal
        if not self._header_done:
            self._open_header()
            if self.refusal is not None:
                raise self.refusal
            if self._spooling:
                raise _corrupt("The image cannot be read.")
        if not self._decodable:
            raise _corrupt("The image cannot be read.")
        error = decode_skeleton(bytes(self._jpeg.skeleton), self._width, self._height)
        if error is not None:
            raise _corrupt("The image is truncated or corrupt.", error)
        return Inspected(MediaFacts(self.mime, self.kind, self._width, self._height), sha256, self.size)

    def close(self) -> None:
        if self._own_spool and self._spool is not None:
            self._spool.close()
            self._spool = None
