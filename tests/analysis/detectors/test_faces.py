"""FacesDetector on scikit-image photographs and generated images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.faces import ANALYSIS_MAX_SIDE, FacesDetector

detector = FacesDetector()


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def analyse(tmp_path: Path, content: bytes) -> DetectorOutput:
    path = tmp_path / "item"
    path.write_bytes(content)
    media = MediaInput(path=path, kind="image", mime="image/jpeg", size=len(content))
    assert detector.applies(media) is None
    return detector.run(media, DetectorContext())


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def test_it_finds_the_one_face_in_the_astronaut_portrait(tmp_path: Path, astronaut: Image.Image) -> None:
    output = analyse(tmp_path, encode(astronaut, quality=90))

    assert output.status == "ok"
    assert output.evidence["face_count"] == 1
    box = output.evidence["boxes"][0]
    # Eileen Collins' face sits in the upper middle of the picture.
    assert 0.2 < box["x"] < 0.5 and 0.05 < box["y"] < 0.35
    assert all(0.0 <= box[k] <= 1.0 for k in ("x", "y", "w", "h"))


def test_faces_are_information_not_evidence_of_manipulation(tmp_path: Path, astronaut: Image.Image) -> None:
    output = analyse(tmp_path, encode(astronaut))

    assert output.probability is None
    assert output.decisive == []
    assert [r.category for r in output.reasons] == [Category.INFO]


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_it_finds_no_face_in_a_photo_without_people(tmp_path: Path, name: str) -> None:
    photo = Image.fromarray(getattr(data, name)())

    output = analyse(tmp_path, encode(photo))

    assert output.status == "ok"
    assert output.evidence == {**output.evidence, "face_count": 0, "boxes": []}


def test_it_finds_no_face_in_noise(tmp_path: Path) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    output = analyse(tmp_path, encode(Image.fromarray(noise), "PNG"))

    assert output.evidence["face_count"] == 0


def test_a_large_photo_is_downscaled_and_still_counted(tmp_path: Path, astronaut: Image.Image) -> None:
    large = astronaut.resize((2400, 2400))

    output = analyse(tmp_path, encode(large, quality=85))

    assert output.evidence["face_count"] == 1
    assert max(output.evidence["analysed_size"]) <= ANALYSIS_MAX_SIDE


def test_a_portrait_stored_sideways_with_an_exif_rotation_is_turned_upright(
    tmp_path: Path, astronaut: Image.Image
) -> None:
    sideways = astronaut.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display, which undoes ROTATE_90 (counter-clockwise)

    output = analyse(tmp_path, encode(sideways, exif=exif.tobytes()))

    assert output.evidence["face_count"] == 1


def test_a_one_pixel_image_abstains_as_too_small(tmp_path: Path) -> None:
    output = analyse(tmp_path, encode(Image.new("RGB", (1, 1)), "PNG"))

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.TOO_SMALL


def test_a_corrupt_file_abstains_as_unreadable(tmp_path: Path, astronaut: Image.Image) -> None:
    for content in (b"\x00" * 64, encode(astronaut)[:200]):
        output = analyse(tmp_path, content)

        assert output.status == "abstained"
        assert output.abstain_code == AbstainCode.UNREADABLE


def test_greyscale_and_transparent_images_are_handled(tmp_path: Path, astronaut: Image.Image) -> None:
    for image, fmt in ((astronaut.convert("L"), "JPEG"), (astronaut.convert("RGBA"), "PNG")):
        output = analyse(tmp_path, encode(image, fmt))

        assert output.evidence["face_count"] == 1


def test_two_people_side_by_side_are_counted_as_two(tmp_path: Path, astronaut: Image.Image) -> None:
    pair = Image.new("RGB", (1024, 512))
    pair.paste(astronaut, (0, 0))
    pair.paste(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))

    output = analyse(tmp_path, encode(pair))

    assert output.evidence["face_count"] == 2
    assert [round(box["x"], 1) < 0.5 for box in output.evidence["boxes"]] == [True, False]
