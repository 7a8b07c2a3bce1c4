"""Media generated on the fly for the tests (Pillow, numpy, scikit-image, wave, PyAV) and hostile files."""

from __future__ import annotations

import io
import wave
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image


def jpeg_bytes(seed: int = 1, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo_jpeg(name: str = "astronaut") -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(out, "JPEG", quality=90)
    return out.getvalue()


def image_bytes(fmt: str, seed: int = 2, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def wav_bytes(seconds: float = 1.0, rate: int = 8000, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((rng.standard_normal(int(seconds * rate)) * 2000).astype("<i2").tobytes())
    return out.getvalue()


def av_bytes(fmt: str, codec: str, *, audio: bool, seed: int = 4, rate: int = 44100) -> bytes:
    import av

    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    container = av.open(out, "w", format=fmt)
    if audio:
        stream: Any = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        for _ in range(30):
            frame = av.AudioFrame.from_ndarray(
                (rng.random((1, 1024)) * 0.2 - 0.1).astype("float32"), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
    else:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            picture = av.VideoFrame.from_ndarray((rng.random((48, 64, 3)) * 255).astype("uint8"), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.txt", "not a picture " * 50)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """The contract's construction: a valid PNG header declaring 10^10 pixels with a tiny IDAT."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def stored_files() -> list[str]:
    """Every object under media/ in default storage (filesystem or S3), plus filesystem multipart leftovers."""
    if hasattr(default_storage, "bucket_name"):
        bucket = default_storage.bucket  # type: ignore[attr-defined]
        return sorted(obj.key for obj in bucket.objects.all())
    root = Path(default_storage.location)  # type: ignore[attr-defined]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
