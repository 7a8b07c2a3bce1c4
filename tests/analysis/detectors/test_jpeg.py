"""The JPEG detector: quality estimate and double-compression evidence on scikit-image photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.jpeg import JpegDetector, estimate_quality

PHOTOS = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee()}


def run(path: Path, mime: str = "image/jpeg") -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime=mime, size=path.stat().st_size)
    detector = JpegDetector()
    skipped = detector.applies(media)
    out = skipped if skipped is not None else detector.run(media, DetectorContext())
    json.dumps(out.evidence)
    return out


def save_jpeg(tmp_path: Path, image: Image.Image | np.ndarray, quality: int, name: str = "photo.jpg") -> Path:
    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    path = tmp_path / name
    im.save(path, "JPEG", quality=quality)
    return path


def decoded(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("quality", [60, 75, 90, 95])
def test_it_estimates_the_quality_of_standard_tables(tmp_path: Path, quality: int) -> None:
    out = run(save_jpeg(tmp_path, PHOTOS["astronaut"], quality))
    assert out.evidence["estimated_quality"] == quality
    assert out.evidence["standard_tables"] is True


def test_custom_tables_get_the_nearest_quality() -> None:
    tables = {0: [max(1, v - 1) for v in [8, 6, 5, 8, 12, 20, 26, 31] * 8]}
    quality, exact, _ = estimate_quality(tables)
    assert not exact
    assert 60 <= quality <= 100


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize(("first", "second"), [(75, 92), (70, 90), (85, 95)])
def test_a_resaved_jpeg_scores_higher_than_the_single_compressed_one(
    tmp_path: Path, name: str, first: int, second: int
) -> None:
    single = run(save_jpeg(tmp_path, PHOTOS[name], second, "single.jpg"))
    first_save = save_jpeg(tmp_path, PHOTOS[name], first, "first.jpg")
    double = run(save_jpeg(tmp_path, decoded(first_save), second, "double.jpg"))
    assert single.probability is not None and double.probability is not None
    assert single.probability < 0.35
    assert double.probability > 0.6
    assert any(r.code == "double_compression" and r.category == Category.EDITED for r in double.reasons)


def test_a_resized_then_resaved_photo_stays_low(tmp_path: Path) -> None:
    first = save_jpeg(tmp_path, PHOTOS["chelsea"], 80, "first.jpg")
    resized = Image.fromarray(decoded(first)).resize((338, 225), Image.Resampling.LANCZOS)
    out = run(save_jpeg(tmp_path, resized, 90, "resized.jpg"))
    assert out.probability is not None and out.probability < 0.35


def test_a_png_is_not_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(PHOTOS["coffee"]).save(path)
    assert run(path, mime="image/png").abstain_code == AbstainCode.UNSUPPORTED_FORMAT
    assert run(path, mime="").abstain_code == AbstainCode.UNSUPPORTED_FORMAT


def test_a_truncated_jpeg_is_unreadable(tmp_path: Path) -> None:
    path = save_jpeg(tmp_path, PHOTOS["astronaut"], 90)
    path.write_bytes(path.read_bytes()[:5000])
    out = run(path)
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.UNREADABLE


def test_garbage_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "junk.jpg"
    path.write_bytes(b"\xff\xd8\xff" + bytes(200))
    assert run(path).abstain_code == AbstainCode.UNREADABLE


def test_a_1x1_jpeg_is_too_small(tmp_path: Path) -> None:
    out = run(save_jpeg(tmp_path, np.zeros((1, 1, 3), np.uint8), 90))
    assert out.abstain_code == AbstainCode.TOO_SMALL
    assert out.evidence["estimated_quality"] == 90


def test_a_greyscale_jpeg_is_analysed(tmp_path: Path) -> None:
    out = run(save_jpeg(tmp_path, data.camera(), 85))
    assert out.status == "ok"
    assert out.probability is not None and out.probability < 0.35


def test_a_cmyk_jpeg_abstains_but_reports_its_quality(tmp_path: Path) -> None:
    out = run(save_jpeg(tmp_path, Image.fromarray(PHOTOS["coffee"]).convert("CMYK"), 80))
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.UNSUPPORTED_FORMAT
    assert out.evidence["estimated_quality"] == 80


def test_quality_100_gives_no_probability(tmp_path: Path) -> None:
    out = run(save_jpeg(tmp_path, PHOTOS["coffee"], 100))
    assert out.status == "ok"
    assert out.probability is None
