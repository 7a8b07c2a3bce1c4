"""JpegGridDetector: a piece of another JPEG pasted in keeps its own 8x8 grid through a global re-save."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.jpeg_grid import JpegGridDetector


def jpeg(array: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decode(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


def run(tmp_path: Path, content: bytes) -> DetectorOutput:
    path = tmp_path / "item"
    path.write_bytes(content)
    output = JpegGridDetector().run(
        MediaInput(path=path, kind="image", mime="image/jpeg", size=len(content)), DetectorContext()
    )
    json.dumps(output.evidence)
    if output.probability is not None:
        assert 0.0 <= output.probability <= 1.0
    return output


def contract_splice() -> bytes:
    """The contract check's splice: a coffee patch in the astronaut, saved at q95, decoded, saved at q75."""
    composite = data.astronaut().copy()
    composite[100:228, 260:388] = data.coffee()[150:278, 200:328]
    return jpeg(decode(jpeg(composite, 95)), 75)


def test_the_contract_splice_is_found_where_the_patch_was_pasted(tmp_path: Path) -> None:
    output = run(tmp_path, contract_splice())

    assert output.probability is not None and output.probability >= 0.8
    assert output.reasons[0].code == "misaligned_grid"
    assert output.reasons[0].category == Category.MANIPULATED
    x, y, w, h = output.evidence["region_px"]
    assert 260 - w <= x <= 388 and 100 - h <= y <= 228


def test_a_piece_of_a_q60_jpeg_pasted_off_grid_and_resaved_at_q90_is_found(tmp_path: Path) -> None:
    base = decode(jpeg(data.astronaut(), 90))
    donor = decode(jpeg(data.coffee(), 60))
    composite = base.copy()
    composite[203:331, 141:269] = donor[50:178, 100:228]

    output = run(tmp_path, jpeg(composite, 90))

    assert output.probability is not None and output.probability >= 0.8


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera"])
def test_untouched_resized_and_resaved_photos_stay_low(tmp_path: Path, name: str) -> None:
    photo = getattr(data, name)()
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    small = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * 3 // 5, photo.shape[0] * 3 // 5)))
    for content in (jpeg(photo, 92), jpeg(photo, 75), jpeg(decode(jpeg(photo, 90)), 80), jpeg(small, 88)):
        output = run(tmp_path, content)

        assert output.probability is None or output.probability < 0.2, output.evidence


def test_an_image_without_a_jpeg_grid_gives_no_probability(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "PNG")

    output = run(tmp_path, buffer.getvalue())

    assert output.status == "ok" and output.probability is None
    assert output.reasons[0].code == "no_grid"


def test_a_small_image_abstains_as_too_small(tmp_path: Path) -> None:
    output = run(tmp_path, jpeg(data.astronaut()[:100, :100], 90))

    assert output.status == "abstained" and output.abstain_code == AbstainCode.TOO_SMALL


def test_a_truncated_jpeg_is_unreadable(tmp_path: Path) -> None:
    output = run(tmp_path, jpeg(data.coffee(), 90)[:400])

    assert output.status == "abstained" and output.abstain_code == AbstainCode.UNREADABLE


def test_a_flat_grey_jpeg_gives_a_sane_result(tmp_path: Path) -> None:
    output = run(tmp_path, jpeg(np.full((256, 256, 3), 128, np.uint8), 90))

    assert output.status == "ok"
    assert output.probability is None or output.probability < 0.2
