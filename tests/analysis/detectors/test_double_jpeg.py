"""The double-quantisation detector (double_jpeg) on images the tests make: a paste without the host's JPEG history
is found and placed, a plain re-save is not flagged, and what it cannot judge is an abstention with its reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.double_jpeg import (
    DoubleJpegDetector,
    _grid_by_zero_spike,
    _ijg_quality,
    _periodic,
)
from analysis.detectors.jpeg import DCT
from analysis.detectors.jpeg_local import ZIGZAG
from analysis.detectors.off_grid import FREQUENCIES, QUALITIES, _column_sums, ijg_table, off_grid_evidence


def run(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size)
    out = DoubleJpegDetector().applies(media) or DoubleJpegDetector().run(media, DetectorContext())
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


def host() -> np.ndarray:
    """The astronaut after a first JPEG save at q60: saved again at q90 it is aligned double compressed."""
    return jpeg_decoded(data.astronaut(), 60)


def spliced() -> np.ndarray:
    """The host with a 160 px piece of the coffee photo (a single q90 JPEG) pasted off its 8x8 grid."""
    out = host().copy()
    out[203:363, 285:445] = jpeg_decoded(data.coffee(), 90)[100:260, 200:360]
    return out


def test_a_misaligned_paste_in_a_double_compressed_jpeg_is_found_and_placed(tmp_path: Path) -> None:
    out = run(save(tmp_path, spliced(), "splice.jpg", quality=90))
    assert out.status == "ok" and out.probability is not None and out.probability > 0.5
    assert any(r.code == "double_jpeg_region" and r.category == Category.MANIPULATED for r in out.reasons)
    x, y = out.evidence["region_px"]
    assert 260 <= x <= 470 and 180 <= y <= 390
    assert out.evidence["last_quantisation"] == "file_table"
    # The primary steps of the q60 save are read back from the histograms (IJG q60: 9 and 10 at (0,1), (1,0)).
    assert out.evidence["primary_steps"]["01"] == [2, 9] and out.evidence["primary_steps"]["10"] == [2, 10]
    (artifact,) = out.artifacts
    assert artifact.name == "double_jpeg_heatmap.png"
    heat = np.asarray(Image.open(io.BytesIO(artifact.data)).convert("L"), dtype=np.float32)
    assert heat.shape == (512, 512)
    assert heat[203:363, 285:445].mean() > 3 * heat.mean()  # the paste is where the map is hot


def test_a_plain_double_compressed_jpeg_is_not_flagged(tmp_path: Path) -> None:
    out = run(save(tmp_path, host(), "resaved.jpg", quality=90))
    # A consistent history is no evidence either way: the detector only ever raises the score.
    assert out.status == "ok" and out.probability == 0.5
    assert [r.code for r in out.reasons] == ["double_jpeg_consistent"]


def test_a_jpeg_compressed_once_has_no_history_to_compare(tmp_path: Path) -> None:
    out = run(save(tmp_path, data.astronaut(), "camera.jpg", quality=90))
    assert out.status == "ok" and out.probability is None
    assert [r.code for r in out.reasons] == ["double_jpeg_single"]


def test_it_abstains_on_an_image_that_never_was_a_jpeg(tmp_path: Path) -> None:
    out = run(save(tmp_path, data.astronaut(), "drawn.png"))
    assert out.status == "abstained" and out.abstain_code == AbstainCode.UNSUPPORTED_FORMAT


def test_it_abstains_on_a_tiny_image(tmp_path: Path) -> None:
    out = run(save(tmp_path, data.astronaut()[:64, :64].copy(), "tiny.jpg"))
    assert out.abstain_code == AbstainCode.TOO_SMALL


def test_it_abstains_on_a_flat_image(tmp_path: Path) -> None:
    flat = jpeg_decoded(np.full((320, 320, 3), 120, np.uint8), 60)
    out = run(save(tmp_path, flat, "flat.jpg", quality=90))
    assert out.abstain_code == AbstainCode.LOW_QUALITY


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xd8\xff\xe0" + b"\x00" * 64,
        b"\xff\xd8\xff\xdb\x00\x43\x00" + bytes(range(64)) + b"\xff\xd9",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
        bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
    ],
)
def test_hostile_bytes_are_an_abstention_not_a_crash(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "hostile.jpg"
    path.write_bytes(payload)
    assert run(path).status == "abstained"


def test_a_truncated_double_compressed_jpeg_does_not_crash(tmp_path: Path) -> None:
    path = save(tmp_path, spliced(), "cut.jpg", quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert run(path).status in {"ok", "abstained"}


def test_the_periodic_model_has_empty_bins_when_the_first_step_is_coarser() -> None:
    n = _periodic(2, 40, 12, 0.3)
    # Q1 = 5 under Q2 = 2: multiples 0, 5, 10, 15 land in bins 0, 2 or 3 (a tie), 5, 7 or 8 ...
    assert n[4][5] > 2 and 1 < n[4][2] < 1.5
    assert n[4][1] < 0.05 and n[4][4] < 0.05  # ... and bins 1 and 4 stay empty
    assert abs(n[1][1:].mean() - 1) < 0.05  # Q1 = Q2: no trace, n is flat around 1


def test_a_paste_in_a_jpeg_later_saved_as_png_is_found_with_the_last_table_read_from_pixels(tmp_path: Path) -> None:
    out = run(save(tmp_path, jpeg_decoded(spliced(), 90), "splice.png"))
    assert out.evidence["last_quantisation"] == "ijg_quality_90"
    assert out.probability is not None and out.probability > 0.5
    x, y = out.evidence["region_px"]
    assert 260 <= x <= 470 and 180 <= y <= 390


def test_the_grid_of_a_high_quality_jpeg_saved_as_png_is_found_off_the_origin() -> None:
    # Cropped by (3, 5) px after a q92 save: the last grid starts at row 5, column 3 of what is left. Blocking at
    # q92 is faint; the exact zeros the quantiser left on the grid are not.
    decoded = jpeg_decoded(host(), 92)[5:, 3:]
    luma = np.asarray(Image.fromarray(np.ascontiguousarray(decoded)).convert("L"), np.float32)
    assert _grid_by_zero_spike(luma) == ((8 - 5) % 8, (8 - 3) % 8)


def test_the_ijg_quality_is_read_from_steps_with_the_small_ones_missing() -> None:
    picks = np.array(ZIGZAG[:15])
    steps = ijg_table(92)[picks[:, 0], picks[:, 1]].copy()
    steps[:8] = 0  # the steps of 2 went unseen under the rounding noise; 3 and 4 remain
    assert _ijg_quality(steps, picks) == 92
    assert _ijg_quality(np.array([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], np.float32), picks) is None


def off_grid_spliced() -> np.ndarray:
    """The astronaut (never compressed) with 256 px of the coffee photo, JPEG q50 on its own grid, pasted 2 rows
    and 3 columns off the host's grid."""
    out = data.astronaut().copy()
    out[194:450, 243:499] = jpeg_decoded(data.coffee(), 50)[96:352, 96:352]
    return out


def test_a_paste_on_its_own_jpeg_grid_is_found_and_placed(tmp_path: Path) -> None:
    out = run(save(tmp_path, off_grid_spliced(), "splice.jpg", quality=90))
    assert out.status == "ok" and out.probability is not None and out.probability > 0.5
    assert out.reasons[0].code == "double_jpeg_off_grid"
    assert out.reasons[0].category == Category.MANIPULATED
    assert out.evidence["off_grid_shift"] == [3, 2]  # (x, y) px of the paste's grid from the host's
    x, y = out.evidence["off_grid_px"]
    assert 243 <= x <= 499 and 194 <= y <= 450
    (artifact,) = out.artifacts
    heat = np.asarray(Image.open(io.BytesIO(artifact.data)).convert("L"), dtype=np.float32)
    assert heat[194:450, 243:499].mean() > 2 * heat.mean()


def test_a_jpeg_cropped_off_its_grid_as_a_whole_is_not_flagged(tmp_path: Path) -> None:
    # Every region carries the same foreign lattice: that is a crop, not a paste.
    cropped = np.ascontiguousarray(jpeg_decoded(data.astronaut(), 60)[3:, 5:])
    out = run(save(tmp_path, cropped, "cropped.jpg", quality=90))
    assert out.status == "ok" and (out.probability is None or out.probability <= 0.5)
    assert not any(r.category == Category.MANIPULATED for r in out.reasons)
    assert out.evidence["off_grid_z"] < 5


def plain_tile_z(g: np.ndarray, tile_blocks: int = 8, min_values: int = 15) -> np.ndarray:
    """Each tile's and offset's best z over the candidate steps, straight from the definition (off_grid.py)."""
    ty, tx = (g.shape[0] - 8) // (8 * tile_blocks), (g.shape[1] - 8) // (8 * tile_blocks)
    side_y, side_x, t = ty * 8 * tile_blocks, tx * 8 * tile_blocks, tile_blocks
    x = g[: side_y + 7, : side_x + 7] - 128.0
    values = []
    for u, v in FREQUENCIES:
        rows = cv2.filter2D(x, cv2.CV_32F, DCT[v][None, :], anchor=(0, 0))
        values.append(np.abs(cv2.filter2D(rows, cv2.CV_32F, DCT[u][:, None], anchor=(0, 0))[:side_y, :side_x]))
    arranged = np.stack(values).reshape(len(FREQUENCIES), ty, t, 8, tx, t, 8)[:, :, ::2]
    arranged = arranged.transpose(1, 4, 3, 6, 0, 2, 5).reshape(ty, tx, 8, 8, -1)
    best = np.full((ty, tx, 8, 8), -np.inf)
    rows_, cols_ = np.array(FREQUENCIES).T
    for quality in QUALITIES:
        steps = np.repeat(ijg_table(quality)[rows_, cols_], arranged.shape[-1] // len(FREQUENCIES))
        big = arranged >= steps / 2
        n = big.sum(axis=-1)
        z = (np.cos(arranged * (np.float32(2 * np.pi) / steps)) * big).sum(axis=-1) / np.sqrt(np.maximum(n, 1) / 2)
        best = np.maximum(best, np.where(n >= min_values, z, -np.inf))
    return best


def test_the_off_grid_search_matches_the_plain_computation_bit_for_bit() -> None:
    g = np.asarray(Image.fromarray(off_grid_spliced()).convert("L"), np.float32)[:, :456]
    best = plain_tile_z(g)
    median = np.nanmedian(np.where(np.isfinite(best), best, np.nan), axis=(0, 1), keepdims=True)
    deviation = np.nan_to_num(np.where(np.isfinite(best), best, np.nan) - median, nan=0.0).astype(np.float32)
    off = off_grid_evidence(g, (0, 0))
    assert off is not None
    py, px = off.shift
    assert off.shift == (2, 3)  # the paste's grid (rows, columns)
    assert np.array_equal(off.tile_z, deviation[:, :, py, px])
    rng = np.random.default_rng(5)
    for rows in (64, 8, 24, 4, 136):
        a = rng.normal(0, 1, (rows, 300)).astype(np.float32)
        assert np.array_equal(_column_sums(a), np.ascontiguousarray(a.T).sum(axis=1))
