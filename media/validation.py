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

import struct
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO, Any

import magic
import pillow_heif
from PIL import Image

from hlekkr.exceptions import UnsupportedMediaType, ValidationFailed
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


def _jpeg_end(fh: IO[bytes], size: int) -> int | None:
    """Offset just after the EOI that ends the JPEG's last scan, walking marker segments and entropy-coded
    data in windows; None if the stream ends first (truncated)."""
    reader = _Window(fh, size)
    pos = 2  # after SOI
    while pos < size:
        if reader.byte(pos) != 0xFF:
            return None
        marker = reader.byte(pos + 1)
        if marker is None:
            return None
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            pos += 2
            continue
        length_bytes = reader.slice(pos + 2, 2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        pos += 2 + length
        if marker == 0xDA:  # SOS: skip entropy-coded data up to the next real marker
            next_marker = reader.next_marker(pos)
            if next_marker is None:
                return None
            pos = next_marker
    return None


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
    end = _jpeg_end(fh, size)
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


def check_image(fh: IO[bytes], mime: str) -> tuple[int, int]:
    """Header size check before any decoding, then verify() and a decode (reduced scale where possible)."""
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
