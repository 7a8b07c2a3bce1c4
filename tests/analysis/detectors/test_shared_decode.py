"""The image detectors of one analysis share a single decode of the file (MediaInput.decoded)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors import base
from analysis.detectors.base import AbstainCode, DetectorConfig, DetectorContext, MediaInput, decode_image
from analysis.detectors.registry import detectors
from analysis.pipeline import run_detectors


def jpeg_file(tmp_path: Path, array: np.ndarray, quality: int = 90) -> MediaInput:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    path = tmp_path / "photo.jpg"
    path.write_bytes(buffer.getvalue())
    return MediaInput(path=path, kind="image", mime="image/jpeg", size=len(buffer.getvalue()))


def test_a_whole_analysis_decodes_the_image_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    media = jpeg_file(tmp_path, data.astronaut())
    calls: list[int] = []

    def counting(content: bytes) -> base.DecodedImage:
        calls.append(len(content))
        return decode_image(content)

    monkeypatch.setattr(base, "decode_image", counting)
    runs = list(run_detectors(detectors(DetectorConfig()), media, DetectorContext()))

    assert calls == [media.size]
    pixel_detectors = {"ela", "jpeg", "spectral", "copy_move", "faces", "known_content"}
    assert {r.name for r in runs if r.output.status == "ok"} >= pixel_detectors


def test_the_jpeg_luminance_is_the_decoders_own_y_plane_and_read_only(tmp_path: Path) -> None:
    media = jpeg_file(tmp_path, data.coffee())
    with Image.open(media.path) as image:
        image.draft("YCbCr", image.size)
        y = np.asarray(image.getchannel(0))

    decoded = media.decoded

    assert decoded.format == "JPEG"
    assert (decoded.width, decoded.height) == (600, 400)
    assert np.array_equal(decoded.luma, y)
    assert not decoded.luma.flags.writeable


def test_a_sixteen_bit_png_is_stretched_to_eight_bits(tmp_path: Path) -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    media = MediaInput(path=path, kind="image", mime="image/png", size=path.stat().st_size)

    luma = media.decoded.luma

    assert luma.dtype == np.uint8
    assert luma.min() == 0 and luma.max() == 255


def test_a_truncated_file_makes_every_pixel_detector_abstain_as_unreadable(tmp_path: Path) -> None:
    media = jpeg_file(tmp_path, data.astronaut())
    media.path.write_bytes(media.path.read_bytes()[:300])
    media = MediaInput(path=media.path, kind="image", mime="image/jpeg", size=300)

    runs = {r.name: r.output for r in run_detectors(detectors(DetectorConfig()), media, DetectorContext())}

    for name in ("ela", "spectral", "copy_move", "faces", "known_content"):
        assert runs[name].status == "abstained", name
        assert runs[name].abstain_code == AbstainCode.UNREADABLE, name


def test_a_shared_value_is_computed_once_for_concurrent_callers_and_read_only(tmp_path: Path) -> None:
    media = jpeg_file(tmp_path, data.coffee())
    calls: list[str] = []
    first_inside = threading.Event()
    release = threading.Event()

    def slow() -> np.ndarray:
        calls.append("slow")
        first_inside.set()
        release.wait(10)
        return np.zeros((8, 8), np.float32)

    results: list[np.ndarray] = []
    first = threading.Thread(target=lambda: results.append(media.shared(("block_dct", 1024, 0, 0), slow)))
    first.start()
    first_inside.wait(10)
    second = threading.Thread(target=lambda: results.append(media.shared(("block_dct", 1024, 0, 0), slow)))
    second.start()
    # Another key is not held up by the first one's computation.
    other = media.shared(("block_dct", 1024, 4, 4), lambda: np.ones(3))
    release.set()
    first.join(10)
    second.join(10)

    assert calls == ["slow"]
    assert len(results) == 2 and results[0] is results[1]
    assert not results[0].flags.writeable
    assert other.tolist() == [1.0, 1.0, 1.0]


def test_a_failed_shared_computation_is_tried_again(tmp_path: Path) -> None:
    media = jpeg_file(tmp_path, data.coffee())

    def broken() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        media.shared("key", broken)
    assert media.shared("key", lambda: 7) == 7


def test_a_colour_png_is_decoded_once_for_its_luminance_and_its_colour_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.detectors import jpeg_local

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    pixels = np.asarray(Image.open(buffer).convert("RGB"))  # a JPEG saved as PNG: jpeg_local reads its grid
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    media = MediaInput(path=path, kind="image", mime="image/png", size=path.stat().st_size)
    decodes: list[int] = []
    colour_decodes: list[int] = []
    original = jpeg_local._colour_pixels

    def counting(content: bytes) -> base.DecodedImage:
        decodes.append(1)
        return decode_image(content)

    def colour_counting(m: MediaInput) -> np.ndarray | None:
        colour_decodes.append(1)
        return original(m)

    monkeypatch.setattr(base, "decode_image", counting)
    monkeypatch.setattr(jpeg_local, "_colour_pixels", colour_counting)
    runs = {r.name: r for r in run_detectors(detectors(DetectorConfig()), media, DetectorContext())}

    assert (decodes, colour_decodes) == ([1], [])
    assert runs["jpeg_local"].output.status == "ok" and runs["double_jpeg"].output.status != "error"
    rgb = media.decoded.rgb
    assert rgb is not None and not rgb.flags.writeable
    assert np.array_equal(rgb, pixels)
    assert np.array_equal(media.decoded.luma, np.asarray(Image.open(path).convert("L")))
