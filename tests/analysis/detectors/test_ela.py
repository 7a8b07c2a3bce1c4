"""Error level analysis on real photos from scikit-image, spliced and untouched."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.ela import ElaDetector

SPLICE_AT = (203, 101)  # x, y of the pasted 100x100 patch


def run(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size)
    out = ElaDetector().run(media, DetectorContext())
    json.dumps(out.evidence)
    return out


def jpeg_roundtrip(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def save(tmp_path: Path, arr: np.ndarray, name: str, **params: Any) -> Path:
    path = tmp_path / name
    Image.fromarray(arr).save(path, **params)
    return path


def untouched_and_spliced(tmp_path: Path, host: np.ndarray, donor: np.ndarray) -> tuple[Path, Path]:
    """A q75 photo re-saved at q95, and the same with a never-compressed patch of another photo pasted in."""
    base = jpeg_roundtrip(host, 75)
    spliced = base.copy()
    x, y = SPLICE_AT
    spliced[y : y + 100, x : x + 100] = donor[150:250, 200:300]
    return (
        save(tmp_path, base, "untouched.jpg", quality=95),
        save(tmp_path, spliced, "spliced.jpg", quality=95),
    )


@pytest.mark.parametrize(
    ("host", "donor"),
    [
        (data.astronaut(), data.coffee()),
        (data.chelsea(), data.coffee()),
        (data.coffee(), data.chelsea()),
    ],
    ids=["astronaut", "chelsea", "coffee"],
)
def test_a_spliced_region_scores_higher_than_the_untouched_photo(
    tmp_path: Path, host: np.ndarray, donor: np.ndarray
) -> None:
    untouched_path, spliced_path = untouched_and_spliced(tmp_path, host, donor)
    untouched, spliced = run(untouched_path), run(spliced_path)
    assert untouched.probability is not None and spliced.probability is not None
    assert untouched.probability < 0.35
    assert spliced.probability > 0.6
    assert spliced.probability > untouched.probability
    assert any(r.code == "ela_hotspot" and r.category == Category.MANIPULATED for r in spliced.reasons)
    hx, hy = spliced.evidence["hotspot_px"]
    x, y = SPLICE_AT
    assert x - 16 <= hx <= x + 116 and y - 16 <= hy <= y + 116


@pytest.mark.parametrize("quality", [85, 92])
def test_a_camera_like_jpeg_resized_and_resaved_stays_low(tmp_path: Path, quality: int) -> None:
    photo = jpeg_roundtrip(data.astronaut(), 92)
    resized = np.asarray(Image.fromarray(photo).resize((384, 384), Image.Resampling.LANCZOS))
    out = run(save(tmp_path, resized, "resized.jpg", quality=quality))
    assert out.probability is not None and out.probability < 0.35


def test_it_attaches_a_heatmap_with_the_image_aspect(tmp_path: Path) -> None:
    out = run(save(tmp_path, data.chelsea(), "cat.jpg", quality=90))
    (artifact,) = out.artifacts
    assert artifact.name == "ela_heatmap.png"
    assert artifact.content_type == "image/png"
    heatmap = Image.open(io.BytesIO(artifact.data))
    assert heatmap.size == (451, 300)
    # A palette PNG whose palette is the colour map: colours, not a grey error map.
    assert heatmap.mode == "P"
    colours = np.asarray(heatmap.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) >= 2
    assert (colours[:, 0] != colours[:, 2]).any()


def test_the_heatmap_of_a_large_image_is_at_most_1024_pixels(tmp_path: Path) -> None:
    big = np.asarray(Image.fromarray(data.astronaut()).resize((2400, 1200)))
    out = run(save(tmp_path, big, "big.jpg", quality=90))
    heatmap = Image.open(io.BytesIO(out.artifacts[0].data))
    assert heatmap.size == (1024, 512)


def test_lossless_files_are_weighted_down(tmp_path: Path) -> None:
    out = run(save(tmp_path, data.astronaut(), "photo.png"))
    assert out.status == "ok"
    assert out.evidence["format_weight"] == 0.5
    assert any(r.code == "ela_lossless_format" for r in out.reasons)


def test_a_1x1_image_is_too_small(tmp_path: Path) -> None:
    out = run(save(tmp_path, np.zeros((1, 1, 3), np.uint8), "dot.jpg"))
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.TOO_SMALL


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_a_truncated_jpeg_is_unreadable(tmp_path: Path, cut: float) -> None:
    path = save(tmp_path, data.astronaut(), "cut.jpg", quality=90)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)])
    out = run(path)
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.UNREADABLE


def test_random_bytes_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert run(path).abstain_code == AbstainCode.UNREADABLE


@pytest.mark.parametrize(
    ("image", "name"),
    [
        (Image.fromarray(data.camera()), "grey.jpg"),
        (Image.fromarray(data.astronaut()).convert("CMYK"), "cmyk.jpg"),
        (Image.fromarray(np.dstack([data.coffee(), np.full(data.coffee().shape[:2], 200, np.uint8)])), "alpha.png"),
        (Image.fromarray(data.camera().astype(np.uint16) * 200).convert("I;16"), "deep.png"),
    ],
    ids=["greyscale", "cmyk-jpeg", "png-with-alpha", "16-bit-png"],
)
def test_odd_but_valid_images_give_a_sane_low_result(tmp_path: Path, image: Image.Image, name: str) -> None:
    path = tmp_path / name
    image.save(path)
    out = run(path)
    assert out.status == "ok"
    assert out.probability is not None and out.probability < 0.35
