"""Resampling traces in the spectrum: upscaled photos against their originals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.spectral import SpectralDetector

PHOTOS = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(), "camera": data.camera()}


def run(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size)
    out = SpectralDetector().run(media, DetectorContext())
    json.dumps(out.evidence)
    return out


def save(tmp_path: Path, im: Image.Image, name: str, **params: Any) -> Path:
    path = tmp_path / name
    im.save(path, **params)
    return path


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_a_bilinear_1_5x_upscale_scores_higher_than_the_original(tmp_path: Path, name: str) -> None:
    im = Image.fromarray(PHOTOS[name])
    up = im.resize((im.width * 3 // 2, im.height * 3 // 2), Image.Resampling.BILINEAR)
    original, upscaled = run(save(tmp_path, im, "o.png")), run(save(tmp_path, up, "u.png"))
    assert original.probability is not None and upscaled.probability is not None
    assert original.probability < 0.35
    assert upscaled.probability > 0.6
    assert any(r.code == "resampling" and r.category == Category.EDITED for r in upscaled.reasons)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_ordinary_photos_resized_down_or_resaved_stay_low(tmp_path: Path, name: str) -> None:
    im = Image.fromarray(PHOTOS[name])
    small = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.LANCZOS)
    for path in (save(tmp_path, im, "q.jpg", quality=90), save(tmp_path, small, "s.jpg", quality=85)):
        out = run(path)
        assert out.probability is not None and out.probability < 0.35


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("method", [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC], ids=["bilinear", "bicubic"])
def test_a_2x_upscale_saved_as_jpeg_is_found_despite_the_jpeg_grid(
    tmp_path: Path, name: str, method: Image.Resampling
) -> None:
    # Period 2 is the Nyquist frequency, which the JPEG-grid exclusion hides from the peak search.
    im = Image.fromarray(PHOTOS[name])
    up = im.resize((im.width * 2, im.height * 2), method)
    out = run(save(tmp_path, up, "u.jpg", quality=90))
    assert out.probability is not None and out.probability > 0.6
    assert out.evidence["pair_parity_ratio"] > 1.1
    assert any(r.code == "resampling" and r.category == Category.EDITED for r in out.reasons)


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("quality", [50, 75])
def test_photos_resaved_at_low_quality_do_not_look_upscaled(tmp_path: Path, name: str, quality: int) -> None:
    out = run(save(tmp_path, Image.fromarray(PHOTOS[name]), "q.jpg", quality=quality))
    assert out.probability is not None and out.probability < 0.35
    assert out.evidence["pair_parity_ratio"] < 1.06


def test_the_evidence_carries_an_azimuthal_spectrum(tmp_path: Path) -> None:
    out = run(save(tmp_path, Image.fromarray(PHOTOS["coffee"]), "c.png"))
    assert len(out.evidence["azimuthal_spectrum"]) == 32
    assert max(out.evidence["azimuthal_spectrum"]) == 0.0


def test_a_1x1_image_is_too_small(tmp_path: Path) -> None:
    assert run(save(tmp_path, Image.new("RGB", (1, 1)), "dot.png")).abstain_code == AbstainCode.TOO_SMALL


def test_a_truncated_jpeg_is_unreadable(tmp_path: Path) -> None:
    path = save(tmp_path, Image.fromarray(PHOTOS["astronaut"]), "a.jpg", quality=90)
    path.write_bytes(path.read_bytes()[:4000])
    assert run(path).abstain_code == AbstainCode.UNREADABLE


@pytest.mark.parametrize(
    ("image", "name"),
    [
        (Image.fromarray(data.astronaut()).convert("CMYK"), "cmyk.jpg"),
        (Image.fromarray(np.dstack([data.coffee(), np.full(data.coffee().shape[:2], 200, np.uint8)])), "alpha.png"),
        (Image.new("L", (300, 200), 90), "flat.png"),
    ],
    ids=["cmyk-jpeg", "png-with-alpha", "flat-grey"],
)
def test_odd_images_give_a_sane_low_result(tmp_path: Path, image: Image.Image, name: str) -> None:
    out = run(save(tmp_path, image, name))
    assert out.status == "ok"
    assert out.probability is not None and out.probability < 0.35
