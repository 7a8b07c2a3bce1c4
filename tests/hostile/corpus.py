"""A corpus of malicious and broken files, generated (deterministically, seed 14) rather than stored.

Every entry is bytes plus the filename and content type a hostile client would send with them, and the
outcomes the upload API may answer with (`accept`: the file is real media and may be stored; otherwise the
documented 4xx codes of hlekkr/errors.py it may be refused with). The tests send each one through the direct
upload, the multipart upload and straight into the detectors; `python tests/hostile/corpus.py DIR` writes the
corpus to DIR for manual runs (curl, a fuzzer).

Families (issue 14, point 2): decompression bombs (PNG, GIF, WebP, TIFF, HEIF, text and ICC chunks), truncated
and bit-flipped JPEG/PNG/MP4/WAV, polyglots, HTML/SVG/ZIP/ELF/PDF disguised by extension, enormous EXIF/XMP/ICC,
malformed and oversized C2PA, zero-length and one-byte files, long, unicode and RTL-override filenames. Lying
Content-Length is an HTTP-level attack, sent by the live keep-alive test.
"""

from __future__ import annotations

import io
import random
import struct
import sys
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ACCEPT = "accept"  # real media: stored (200/201) is a right answer
# Codes a broken or hostile file may be refused with (all 4xx, all in the catalogue).
CORRUPT = frozenset({"corrupt_file"})
UNSUPPORTED = frozenset({"unsupported_media_type", "content_type_mismatch"})
EMPTY = frozenset({"empty_file"})
PIXELS = frozenset({"too_many_pixels"})
POLYGLOT = frozenset({"polyglot_file"})


@dataclass(frozen=True)
class Hostile:
    name: str
    family: str
    build: Callable[[], bytes]
    filename: str
    content_type: str
    outcomes: frozenset[str] = field(default_factory=frozenset)

    @property
    def data(self) -> bytes:
        return _built(self.name)


# --- building blocks ------------------------------------------------------------------------------------------
def _rng() -> random.Random:
    return random.Random(14)


@cache
def photo_jpeg(side: int = 256, quality: int = 90) -> bytes:
    """A real photograph (scikit-image's astronaut), so detectors have something to look at."""
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _image(fmt: str, side: int = 64, **options: object) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGB", (side, side))
    image.putdata([((x * 7) % 256, (y * 5) % 256, (x * y) % 256) for y in range(side) for x in range(side)])
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with(chunks: list[tuple[bytes, bytes]], width: int = 64, height: int = 64, idat: bytes | None = None) -> bytes:
    """A PNG with `chunks` inserted before the image data (8-bit grayscale unless `idat` is given)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"".join(b"\x00" + bytes((x + y) % 256 for x in range(width)) for y in range(height)))
    body = _png_chunk(b"IHDR", ihdr) + b"".join(_png_chunk(k, p) for k, p in chunks)
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _flip(data: bytes, count: int, start: int = 0, end: int | None = None) -> bytes:
    rng = _rng()
    out = bytearray(data)
    end = len(data) if end is None else end
    for _ in range(count):
        out[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
    return bytes(out)


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _after_soi(jpeg: bytes, segments: bytes) -> bytes:
    return jpeg[:2] + segments + jpeg[2:]


def _scan_start(jpeg: bytes) -> int:
    return jpeg.index(b"\xff\xda")


# --- bombs ------------------------------------------------------------------------------------------------------
def jpeg_scan_bomb(repeats: int = 2000) -> bytes:
    """A progressive JPEG whose first scan is repeated: a few KiB per repeat, and the decoder visits every block
    again for each (libjpeg only warns about the bogus progression)."""
    from PIL import Image

    out = io.BytesIO()
    rng = _rng()
    pixels = bytes(rng.randrange(256) for _ in range(64 * 64 * 3))
    Image.frombytes("RGB", (64, 64), pixels).save(out, "JPEG", quality=80, progressive=True)
    data = out.getvalue()
    first = _scan_start(data)
    second = data.index(b"\xff\xda", first + 2)
    return data[:second] + data[first:second] * repeats + data[second:]


def png_pixel_bomb() -> bytes:
    """100 000 x 100 000 declared, a few bytes of compressed zeros: 10 gigapixels if anyone decoded it."""
    return _png_with([], width=100_000, height=100_000, idat=zlib.compress(b"\x00" * 100_000, 9))


def png_under_limit_bomb() -> bytes:
    """6 000 x 6 000 (36 MP, under the 50 MP limit) of zeros: 40 KiB on the wire, 108 MB as RGB in memory."""
    row = b"\x00" + b"\x00" * 6000
    return _png_with([], width=6000, height=6000, idat=zlib.compress(row * 6000, 9))


def png_text_bomb() -> bytes:
    """A zTXt chunk inflating to 64 MiB of text (metadata parsers that inflate text chunks)."""
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    return _png_with([(b"zTXt", payload)])


def png_icc_bomb() -> bytes:
    """An iCCP profile inflating to 64 MiB."""
    payload = b"icc\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    return _png_with([(b"iCCP", payload)])


def gif_pixel_bomb() -> bytes:
    """A 65 535 x 65 535 logical screen around a 1 x 1 frame."""
    gif = bytearray(_image("GIF", side=1))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(gif)


def gif_frame_bomb() -> bytes:
    """3 000 frames of 64 x 64: small on the wire, many decodes for a per-frame reader."""
    from PIL import Image

    frames = []
    for i in range(3000):
        frame = Image.new("P", (64, 64), color=0)
        frame.putpixel((i % 64, (i // 64) % 64), 1 + i % 254)  # every frame differs, so none is merged away
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=10, loop=0)
    return buffer.getvalue()


def webp_pixel_bomb() -> bytes:
    """A VP8X canvas of 16 384 x 16 384 (268 MP) around a tiny lossless bitstream."""
    webp = _image("WEBP", side=16, lossless=True)
    vp8l = webp[12:]  # the VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff_pixel_bomb() -> bytes:
    """A TIFF whose tags declare 200 000 x 200 000 pixels over one tiny strip."""
    tiff = bytearray(_image("TIFF", side=8))
    # Patch ImageWidth (256) and ImageLength (257) in IFD0, whatever their type (SHORT or LONG).
    (ifd,) = struct.unpack("<I", tiff[4:8])
    (count,) = struct.unpack("<H", tiff[ifd : ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, _kind = struct.unpack("<HH", tiff[at : at + 4])
        if tag in (256, 257):
            tiff[at + 2 : at + 12] = struct.pack("<HII", 4, 1, 200_000)
    return bytes(tiff)


def heif_pixel_bomb() -> bytes:
    """A real HEIC whose `ispe` box says 60 000 x 60 000."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 30, 200)).save(buffer, "HEIF", quality=50)
    data = bytearray(buffer.getvalue())
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 60_000, 60_000)
    return bytes(data)


# --- truncated and bit-flipped -------------------------------------------------------------------------------------
def mp4_video() -> bytes:
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def wav_audio(seconds: float = 0.5) -> bytes:
    import math

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        frames = int(16000 * seconds)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(frames)))
    return buffer.getvalue()


def wav_lying_header() -> bytes:
    """The data chunk declares 2 GB; 1 000 bytes follow."""
    wav = bytearray(wav_audio(0.05))
    at = wav.find(b"data")
    wav[at + 4 : at + 8] = struct.pack("<I", 2_000_000_000)
    return bytes(wav[: at + 8 + 1000])


def wav_zero_channels() -> bytes:
    wav = bytearray(wav_audio(0.05))
    at = wav.find(b"fmt ")
    wav[at + 10 : at + 12] = struct.pack("<H", 0)
    return bytes(wav)


def mp4_without_moov() -> bytes:
    data = mp4_video()
    at = data.find(b"moov")
    return data[: at - 4] if data.find(b"mdat") < at else data[: at - 4] + data[data.find(b"mdat") - 4 :]


# --- polyglots ------------------------------------------------------------------------------------------------------
def _zip_archive() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload/run.sh", "#!/bin/sh\necho owned\n")
    return buffer.getvalue()


def html_in_png() -> bytes:
    """A valid PNG carrying an HTML page with a script in a tEXt chunk and after IEND."""
    page = b"<html><body><script>alert(document.cookie)</script></body></html>"
    return _png_with([(b"tEXt", b"Comment\x00" + page)]) + page


def gifar() -> bytes:
    """GIF89a that is also JavaScript (`GIF89a=1;alert(1)//`) with a ZIP appended (the GIFAR trick)."""
    gif = bytearray(_image("GIF", side=8))
    return bytes(gif) + b"\n=1;alert(1)//\n" + _zip_archive()


def html_after_jpeg() -> bytes:
    """A short HTML page after a JPEG's EOI: under the 16 KiB trailer allowance, but markup."""
    return photo_jpeg(128) + HTML


def pdf_after_jpeg() -> bytes:
    pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\ntrailer<<>>\n%%EOF\n"
    return photo_jpeg(128) + pdf * 200


# --- disguised -------------------------------------------------------------------------------------------------------
def elf_binary() -> bytes:
    return Path(sys.executable).read_bytes()[:65536] if Path(sys.executable).exists() else b"\x7fELF" + b"\x00" * 4000


SVG = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><text>&b;</text><script>alert(2)</script></svg>'
)
HTML = (
    b"<!DOCTYPE html><html><head><title>x</title></head><body><script>fetch('/api/v1/auth/me/')</script></body></html>"
)


# --- enormous and malformed metadata ------------------------------------------------------------------------------
def _exif_ifd(entries: int, *, loop: bool = False) -> bytes:
    """A little-endian TIFF/EXIF block with `entries` ASCII tags; `loop` points the next-IFD offset at itself."""
    header = b"II*\x00" + struct.pack("<I", 8)
    values = bytearray()
    table = bytearray(struct.pack("<H", entries))
    value_base = 8 + 2 + 12 * entries + 4
    for i in range(entries):
        text = f"v{i}".encode() + b"\x00"
        table += struct.pack("<HHII", 0x8000 + (i % 0x7000), 2, len(text), value_base + len(values))
        values += text
    table += struct.pack("<I", 8 if loop else 0)
    return header + bytes(table) + bytes(values)


def exif_enormous() -> bytes:
    """Sixty APP1 EXIF segments of ~64 KiB each (about 4 MB of EXIF) before a real photograph."""
    block = b"Exif\x00\x00" + _exif_ifd(5000)[:65000]
    return _after_soi(photo_jpeg(128), _jpeg_segment(0xE1, block) * 60)


def exif_ifd_loop() -> bytes:
    return _after_soi(photo_jpeg(128), _jpeg_segment(0xE1, b"Exif\x00\x00" + _exif_ifd(3, loop=True)))


def xmp_entity_bomb() -> bytes:
    """XMP whose DOCTYPE is a billion-laughs entity expansion."""
    entities = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    xmp = (
        f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><!DOCTYPE x [{entities}]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="&l9;"/></rdf:RDF></x:xmpmeta>'
        '<?xpacket end="w"?>'
    ).encode()
    return _after_soi(photo_jpeg(128), _jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp))


def xmp_enormous() -> bytes:
    """Eighty APP1 XMP segments of ~64 KiB (about 5 MB of deeply nested XML)."""
    nested = b"<rdf:Bag>" * 6000 + b"</rdf:Bag>" * 6000
    segment = _jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + nested[:65000])
    return _after_soi(photo_jpeg(128), segment * 80)


def icc_enormous_jpeg() -> bytes:
    """255 APP2 ICC_PROFILE chunks (the most the format numbers): about 16 MB of 'profile'."""
    chunks = b"".join(_jpeg_segment(0xE2, b"ICC_PROFILE\x00" + bytes((i, 255)) + bytes(65000)) for i in range(1, 256))
    return _after_soi(photo_jpeg(128), chunks)


def _jumbf(payload: bytes, *, declared: int | None = None) -> bytes:
    """A C2PA-style APP11 JUMBF segment (CI 'JP', instance 1, sequence 1) around a 'jumb' superbox."""
    box = struct.pack(">I", declared if declared is not None else len(payload) + 8) + b"jumb" + payload
    return b"JP" + struct.pack(">HI", 1, 1) + box


def c2pa_malformed() -> bytes:
    desc = b"\x00\x00\x00\x1bjumdc2pa\x00\x11\x00\x10\x80\x00\xaa\x00\x38\x9b\x71\x03c2pa\x00"
    return _after_soi(photo_jpeg(128), _jpeg_segment(0xEB, _jumbf(desc + b"\xde\xad\xbe\xef" * 50)))


def c2pa_lying_length() -> bytes:
    """The JUMBF box claims 4 GiB; a few bytes follow."""
    return _after_soi(photo_jpeg(128), _jpeg_segment(0xEB, _jumbf(b"jumdc2pa" + b"\x00" * 40, declared=0xFFFFFFF0)))


def c2pa_oversized() -> bytes:
    """150 APP11 segments of ~64 KiB continuing one 'manifest store' (about 10 MB of CBOR-looking noise)."""
    rng = _rng()
    segments = b"".join(
        _jpeg_segment(0xEB, b"JP" + struct.pack(">HI", 1, seq) + rng.randbytes(65000)) for seq in range(1, 151)
    )
    return _after_soi(photo_jpeg(128), segments)


# --- the corpus ---------------------------------------------------------------------------------------------------
PNG_SMALL = "png_small"


def _entries() -> list[Hostile]:
    jpeg = photo_jpeg
    png = lambda: _image("PNG")  # noqa: E731
    acc = frozenset({ACCEPT})
    broken = CORRUPT | UNSUPPORTED
    return [
        # bombs
        Hostile("png_pixel_bomb", "bomb", png_pixel_bomb, "bomb.png", "image/png", PIXELS),
        Hostile("jpeg_scan_bomb", "bomb", jpeg_scan_bomb, "scans.jpg", "image/jpeg", CORRUPT),
        Hostile("png_under_limit_bomb", "bomb", png_under_limit_bomb, "big.png", "image/png", acc | CORRUPT),
        Hostile("png_text_bomb", "bomb", png_text_bomb, "text.png", "image/png", acc | CORRUPT),
        Hostile("png_icc_bomb", "bomb", png_icc_bomb, "icc.png", "image/png", acc | CORRUPT),
        Hostile("gif_pixel_bomb", "bomb", gif_pixel_bomb, "bomb.gif", "image/gif", PIXELS),
        Hostile("gif_frame_bomb", "bomb", gif_frame_bomb, "frames.gif", "image/gif", acc),
        Hostile("webp_pixel_bomb", "bomb", webp_pixel_bomb, "bomb.webp", "image/webp", PIXELS | CORRUPT),
        Hostile("tiff_pixel_bomb", "bomb", tiff_pixel_bomb, "bomb.tiff", "image/tiff", PIXELS),
        Hostile("heif_pixel_bomb", "bomb", heif_pixel_bomb, "bomb.heic", "image/heic", PIXELS | CORRUPT),
        # truncated and bit-flipped
        Hostile("jpeg_truncated_half", "broken", lambda: jpeg()[: len(jpeg()) // 2], "half.jpg", "image/jpeg", CORRUPT),
        Hostile("jpeg_truncated_header", "broken", lambda: jpeg()[:120], "head.jpg", "image/jpeg", broken),
        Hostile("jpeg_no_eoi", "broken", lambda: jpeg()[:-2], "noeoi.jpg", "image/jpeg", acc | CORRUPT),
        Hostile(
            "jpeg_bitflip_scan",
            "broken",
            lambda: _flip(jpeg(), 40, start=_scan_start(jpeg()) + 20, end=len(jpeg()) - 2),
            "flip.jpg",
            "image/jpeg",
            acc | CORRUPT,
        ),
        Hostile(
            "jpeg_bitflip_tables",
            "broken",
            lambda: _flip(jpeg(), 30, start=20, end=_scan_start(jpeg())),
            "tables.jpg",
            "image/jpeg",
            acc | broken,
        ),
        Hostile("png_truncated", "broken", lambda: png()[:-300], "cut.png", "image/png", CORRUPT),
        Hostile("png_bitflip", "broken", lambda: _flip(png(), 20, start=40), "flip.png", "image/png", acc | broken),
        Hostile(
            "mp4_truncated", "broken", lambda: mp4_video()[: len(mp4_video()) // 2], "cut.mp4", "video/mp4", broken
        ),
        Hostile("mp4_without_moov", "broken", mp4_without_moov, "nomoov.mp4", "video/mp4", broken),
        Hostile(
            "mp4_bitflip", "broken", lambda: _flip(mp4_video(), 60, start=64), "flip.mp4", "video/mp4", acc | broken
        ),
        Hostile("wav_lying_header", "broken", wav_lying_header, "lie.wav", "audio/wav", acc | broken),
        Hostile("wav_zero_channels", "broken", wav_zero_channels, "zero.wav", "audio/wav", acc | broken),
        Hostile("wav_truncated", "broken", lambda: wav_audio()[:30], "cut.wav", "audio/wav", broken),
        # polyglots
        Hostile("jpeg_zip_polyglot", "polyglot", lambda: jpeg() + _zip_archive(), "poly.jpg", "image/jpeg", POLYGLOT),
        Hostile("png_html_polyglot", "polyglot", html_in_png, "page.png", "image/png", POLYGLOT),
        Hostile("gifar", "polyglot", gifar, "gifar.gif", "image/gif", POLYGLOT | CORRUPT),
        Hostile("html_after_jpeg", "polyglot", html_after_jpeg, "page.jpg", "image/jpeg", POLYGLOT),
        Hostile("pdf_after_jpeg", "polyglot", pdf_after_jpeg, "pdf.jpg", "image/jpeg", POLYGLOT | CORRUPT),
        # disguised by extension
        Hostile("html_as_jpeg", "disguised", lambda: HTML, "photo.jpg", "image/jpeg", UNSUPPORTED),
        Hostile("svg_as_png", "disguised", lambda: SVG, "icon.png", "image/png", UNSUPPORTED),
        Hostile("zip_as_jpeg", "disguised", _zip_archive, "holiday.jpg", "image/jpeg", UNSUPPORTED | POLYGLOT),
        Hostile("elf_as_mp4", "disguised", elf_binary, "clip.mp4", "video/mp4", UNSUPPORTED),
        Hostile("pdf_as_png", "disguised", lambda: b"%PDF-1.7\n" + b"0" * 2000, "scan.png", "image/png", UNSUPPORTED),
        Hostile("shell_as_wav", "disguised", lambda: b"#!/bin/sh\nrm -rf /\n" * 50, "a.wav", "audio/wav", UNSUPPORTED),
        # enormous and malformed metadata
        Hostile("exif_enormous", "metadata", exif_enormous, "exif.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("exif_ifd_loop", "metadata", exif_ifd_loop, "loop.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("xmp_entity_bomb", "metadata", xmp_entity_bomb, "lol.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("xmp_enormous", "metadata", xmp_enormous, "xmp.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("icc_enormous_jpeg", "metadata", icc_enormous_jpeg, "icc.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("c2pa_malformed", "c2pa", c2pa_malformed, "c2pa.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("c2pa_lying_length", "c2pa", c2pa_lying_length, "c2pa-lie.jpg", "image/jpeg", acc | CORRUPT),
        Hostile("c2pa_oversized", "c2pa", c2pa_oversized, "c2pa-big.jpg", "image/jpeg", acc | CORRUPT),
        # tiny
        Hostile("zero_length", "tiny", lambda: b"", "empty.jpg", "image/jpeg", EMPTY),
        Hostile("one_byte", "tiny", lambda: b"\xff", "one.jpg", "image/jpeg", UNSUPPORTED | CORRUPT),
        Hostile("jpeg_soi_only", "tiny", lambda: b"\xff\xd8", "soi.jpg", "image/jpeg", UNSUPPORTED | CORRUPT),
        # hostile filenames around a real PNG (the name is sanitised; the bytes are fine)
        Hostile("name_300_chars", "filename", png, "n" * 296 + ".png", "image/png", acc),
        Hostile("name_4000_chars", "filename", png, "€" * 4000 + ".png", "image/png", acc),
        Hostile("name_unicode", "filename", png, "фото 写真 🖼️ e\u0301.png", "image/png", acc),
        Hostile("name_rtl_override", "filename", png, "invoice\u202egnp.exe", "image/png", acc),
        Hostile("name_traversal", "filename", png, "../../../etc/passwd.png", "image/png", acc),
        Hostile("name_control_chars", "filename", png, "a\tb\x1bc\x7f.png", "image/png", acc),
        Hostile("name_windows_device", "filename", png, "C:\\Windows\\CON.png", "image/png", acc),
    ]


CORPUS: list[Hostile] = _entries()
BY_NAME = {entry.name: entry for entry in CORPUS}


@cache
def _built(name: str) -> bytes:
    return BY_NAME[name].build()


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in CORPUS:
        path = directory / f"{entry.name}.bin"
        path.write_bytes(entry.data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/hostile-corpus")
    for written in write(target):
        print(written, written.stat().st_size)
