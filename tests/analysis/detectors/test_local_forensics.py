"""The splice and generated-image detectors (jpeg_local, noise_residual, generated) on images the tests make."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.generated import GeneratedDetector
from analysis.detectors.jpeg_local import JpegLocalDetector
from analysis.detectors.noise_residual import NoiseResidualDetector
from bench.forgery_corpus import upsample_generated

DETECTORS = [JpegLocalDetector, NoiseResidualDetector, GeneratedDetector]


def run(detector: Detector, path: Path) -> DetectorOutput:
    out = detector.run(MediaInput(path=path, kind="image", mime="", size=path.stat().st_size), DetectorContext())
    json.dumps(out.evidence)
    return out


def jpeg_decoded(arr: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def save(tmp_path: Path, arr: np.ndarray, name: str, quality: int = 90) -> Path:
    path = tmp_path / name
    Image.fromarray(arr).save(path, quality=quality) if name.endswith(".jpg") else Image.fromarray(arr).save(path)
    return path


def spliced() -> np.ndarray:
    """Astronaut as a q75 JPEG with a 160 px piece of the coffee photo (a q92 JPEG) pasted off the 8x8 grid."""
    host = jpeg_decoded(data.astronaut(), 75)
    donor = jpeg_decoded(data.coffee(), 92)
    out = host.copy()
    out[203:363, 285:445] = donor[100:260, 200:360]
    return out


def test_a_paste_into_a_jpeg_saved_as_png_is_located(tmp_path: Path) -> None:
    out = run(JpegLocalDetector(), save(tmp_path, spliced(), "splice.png"))
    assert out.probability is not None and out.probability > 0.5
    assert any(r.code == "jpeg_local_misfit" and r.category == Category.MANIPULATED for r in out.reasons)
    x, y = out.evidence["region_px"]
    assert 260 <= x <= 470 and 180 <= y <= 390
    (artifact,) = out.artifacts
    assert artifact.name == "jpeg_local_heatmap.png"
    assert Image.open(io.BytesIO(artifact.data)).size == (512, 512)


def test_an_untouched_jpeg_origin_photo_fits_its_own_compression(tmp_path: Path) -> None:
    out = run(JpegLocalDetector(), save(tmp_path, jpeg_decoded(data.astronaut(), 75), "photo.png"))
    assert out.probability is not None and out.probability < 0.5


def test_a_never_compressed_image_is_the_wrong_kind_for_the_jpeg_model(tmp_path: Path) -> None:
    out = run(JpegLocalDetector(), save(tmp_path, data.astronaut(), "raw.png"))
    assert out.abstain_code == AbstainCode.UNSUPPORTED_FORMAT


def test_a_region_with_foreign_noise_stands_out_in_the_noise_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = data.astronaut().astype(np.float32)
    photo[256:448, 256:448] += rng.normal(0, 10, (192, 192, 1))
    out = run(NoiseResidualDetector(), save(tmp_path, np.clip(photo, 0, 255).astype(np.uint8), "noisy.png"))
    assert out.status == "ok"
    x, y = out.evidence["region_px"]
    assert 224 <= x <= 480 and 224 <= y <= 480
    assert out.artifacts[0].name == "noise_residual_heatmap.png"


def test_a_generator_like_upsampled_image_is_called_generated(tmp_path: Path) -> None:
    fake, _ = upsample_generated(jpeg_decoded(data.astronaut(), 90), np.random.default_rng(4))
    out = run(GeneratedDetector(), save(tmp_path, fake, "fake.png"))
    assert out.probability is not None and out.probability > 0.5
    assert out.reasons[0].category == Category.GENERATED


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_camera_like_photos_are_not_called_generated(tmp_path: Path, name: str) -> None:
    out = run(GeneratedDetector(), save(tmp_path, getattr(data, name)(), "photo.jpg", quality=88))
    assert out.probability is not None and out.probability < 0.5


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_tiny_image_is_too_small(tmp_path: Path, detector: type[Detector]) -> None:
    assert (
        run(detector(), save(tmp_path, np.zeros((40, 40, 3), np.uint8), "tiny.png")).abstain_code
        == AbstainCode.TOO_SMALL
    )


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_flat_image_abstains(tmp_path: Path, detector: type[Detector]) -> None:
    out = run(detector(), save(tmp_path, np.full((512, 512, 3), 90, np.uint8), "flat.png"))
    assert out.status == "abstained"
    assert out.abstain_code in {AbstainCode.LOW_QUALITY, AbstainCode.UNSUPPORTED_FORMAT}


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_truncated_file_is_unreadable(tmp_path: Path, detector: type[Detector]) -> None:
    path = save(tmp_path, data.coffee(), "cut.jpg")
    path.write_bytes(path.read_bytes()[:2000])
    assert run(detector(), path).abstain_code == AbstainCode.UNREADABLE


def test_the_fast_step_estimate_and_median_match_the_plain_computations() -> None:
    from analysis.detectors.jpeg_local import (
        JpegLocalConfig,
        _difference_profile,
        _integer_median,
        clipped_blocks,
        estimate_step,
    )

    rng = np.random.default_rng(2)
    d = rng.integers(0, 256, (301, 200)).astype(np.float32)
    for axis in (0, 1):
        assert np.array_equal(_integer_median(d, axis), np.median(d, axis=axis))
    assert np.array_equal(_integer_median(d[:300], 1), np.median(d[:300], axis=1))
    pixels = rng.integers(0, 256, (203, 161), dtype=np.uint8)
    pixels[50:60, 40:48] = 255
    for axis in (0, 1):
        diff = np.abs(np.diff(pixels.astype(np.float32), axis=axis))
        profile = np.median(diff, axis=1 - axis) + np.mean(diff, axis=1 - axis)
        assert np.array_equal(_difference_profile(pixels, axis), profile)
    for origin in ((0, 0), (3, 5)):
        part = pixels[origin[0] :, origin[1] :]
        assert np.array_equal(clipped_blocks(part), clipped_blocks(part.astype(np.float32)))

    def plain(c: np.ndarray, cfg: JpegLocalConfig) -> int:
        best = 1
        for q in range(2, cfg.max_step + 1):
            big = c[np.abs(c) >= q / 2]
            if big.size < 50:
                break
            if float(np.cos(2 * np.pi * big / q).mean()) >= cfg.min_periodicity:
                best = q
        return best

    cfg = JpegLocalConfig()
    for step in (1, 2, 3, 7, 12):
        c = (np.round(rng.laplace(0, 20, 8000) / step) * step + rng.normal(0, 0.3, 8000)).astype(np.float32)
        assert estimate_step(c, cfg) == plain(c, cfg)


def test_a_block_heatmap_keeps_the_aspect_at_most_512_pixels() -> None:
    from analysis.detectors.heatmaps import heatmap_png

    wide = Image.open(io.BytesIO(heatmap_png(np.ones((31, 46), np.float32), 1500, 1000)))
    assert (wide.size, wide.mode) == ((512, 341), "P")
    small = Image.open(io.BytesIO(heatmap_png(np.ones((9, 12), np.float32), 400, 300)))
    assert small.size == (400, 300)


def test_the_block_dct_is_the_dct_of_every_block() -> None:
    import cv2

    from analysis.detectors.jpeg_local import block_dct

    g = np.random.default_rng(4).integers(0, 256, (43, 37)).astype(np.float32)
    coefficients = block_dct(g)
    assert coefficients.shape == (5, 4, 8, 8)
    for by, bx in ((0, 0), (4, 3), (2, 1)):
        block = g[by * 8 : by * 8 + 8, bx * 8 : bx * 8 + 8] - 128.0
        assert np.allclose(coefficients[by, bx], cv2.dct(block), atol=1e-3)


def test_clipped_colour_blocks_mark_any_saturated_channel_from_the_shared_decode(tmp_path: Path) -> None:
    from unittest import mock

    from analysis.detectors import jpeg_local

    rgb = np.full((64, 80, 3), 128, np.uint8)
    rgb[10, 12, 0] = 255  # a saturated red in block (1, 1)
    rgb[40, 70, 2] = 2  # a blue at 2: clipped with a margin of 3, not of 1, in block (5, 8)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    media = MediaInput(path=path, kind="image", mime="image/png", size=path.stat().st_size)
    with mock.patch.object(jpeg_local, "_colour_pixels", wraps=jpeg_local._colour_pixels) as decode:
        tight = jpeg_local.clipped_colour_blocks(media, (0, 0), (8, 10))
        loose = jpeg_local.clipped_colour_blocks(media, (0, 0), (8, 10), margin=3)
        past = jpeg_local.clipped_colour_blocks(media, (8, 8), (8, 10))
    assert decode.call_count == 0  # the PNG's pixels came with the shared decode
    assert [tuple(b) for b in np.argwhere(tight)] == [(1, 1)]
    assert [tuple(b) for b in np.argwhere(loose)] == [(1, 1), (5, 8)]
    # From (8, 8) the last block row and column reach past the image: counted as clipped, as padding would be.
    assert past[7].all() and past[:, 9].all() and past[0, 0] and not past[:7, :9][1:].any()
