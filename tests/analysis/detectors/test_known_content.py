"""KnownContentDetector on photographs from scikit-image, banked and altered here."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Decisive,
    DetectorContext,
    DetectorOutput,
    HashBankEntry,
    MediaInput,
)
from analysis.detectors.known_content import KnownContentDetector, hamming, pdq_hash

detector = KnownContentDetector()


def encode(image: Image.Image, fmt: str = "JPEG", **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def media_from(tmp_path: Path, content: bytes, mime: str = "image/jpeg") -> MediaInput:
    path = tmp_path / "item"
    path.write_bytes(content)
    return MediaInput(path=path, kind="image", mime=mime, size=len(content))


def analyse(tmp_path: Path, content: bytes, banks: list[HashBankEntry] | None = None) -> DetectorOutput:
    media = media_from(tmp_path, content)
    assert detector.applies(media) is None
    return detector.run(media, DetectorContext(hash_banks=banks or []))


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def astronaut_hash(astronaut: Image.Image) -> str:
    return pdq_hash(astronaut)[0]


def fake(hash_hex: str, label: str = "staged") -> HashBankEntry:
    return HashBankEntry(bank="fact-checks", bank_kind="known_fake", hash_hex=hash_hex, label=label)


def original(hash_hex: str) -> HashBankEntry:
    return HashBankEntry(bank="agency-archive", bank_kind="known_authentic", hash_hex=hash_hex, label="wire")


def test_pdq_hash_gives_64_hex_characters_and_a_quality(astronaut: Image.Image) -> None:
    hash_hex, quality = pdq_hash(astronaut)

    assert len(hash_hex) == 64 and int(hash_hex, 16) >= 0
    assert quality == 100


def test_pdq_hash_accepts_arrays_and_non_rgb_modes(astronaut: Image.Image) -> None:
    from_array, _ = pdq_hash(np.asarray(astronaut))
    from_grey, _ = pdq_hash(astronaut.convert("L"))
    from_rgba, _ = pdq_hash(astronaut.convert("RGBA"))

    assert hamming(from_array, pdq_hash(astronaut)[0]) == 0
    assert hamming(from_grey, from_array) <= 16
    assert hamming(from_rgba, from_array) == 0


def test_hamming_counts_differing_bits_and_rejects_other_lengths() -> None:
    zero = "0" * 64

    assert hamming(zero, zero) == 0
    assert hamming(zero, "f" + "0" * 63) == 4
    assert hamming("f" * 64, zero) == 256
    with pytest.raises(ValueError):
        hamming(zero, "abc")


def test_an_exact_copy_of_a_banked_fake_is_decisive(
    tmp_path: Path, astronaut: Image.Image, astronaut_hash: str
) -> None:
    output = analyse(tmp_path, encode(astronaut, quality=95), [fake(astronaut_hash)])

    assert output.status == "ok"
    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.probability is not None and output.probability > 0.9
    assert output.reasons[0].category == Category.MANIPULATED
    assert output.evidence["matches"][0]["label"] == "staged"
    assert output.evidence["matches"][0]["distance"] <= 8


def test_a_resized_recompressed_and_slightly_cropped_fake_still_matches(
    tmp_path: Path, astronaut: Image.Image, astronaut_hash: str
) -> None:
    altered = astronaut.crop((8, 8, 504, 504)).resize((300, 300)).convert("RGB")

    output = analyse(tmp_path, encode(altered, quality=60), [fake(astronaut_hash)])

    assert output.decisive == [Decisive.KNOWN_FAKE]


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_a_banked_photo_cropped_five_percent_per_side_and_recompressed_is_matched(tmp_path: Path, name: str) -> None:
    photo = Image.fromarray(getattr(data, name)())
    w, h = photo.size
    cropped = photo.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    banked = pdq_hash(photo)[0]
    assert hamming(pdq_hash(cropped)[0], banked) > 31  # the plain hash alone would miss it

    output = analyse(tmp_path, encode(cropped, quality=85), [fake(banked)])

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.evidence["matches"][0]["variant"] == "uncropped_90"
    assert "uncropped 90 %" in output.reasons[0].text


def test_a_submission_with_a_border_matches_a_banked_crop_through_a_centre_crop(
    tmp_path: Path, astronaut: Image.Image
) -> None:
    # The bank holds the middle 80 % of each side; the submission is the full frame around it.
    banked = pdq_hash(astronaut.crop((51, 51, 461, 461)))[0]
    assert hamming(pdq_hash(astronaut)[0], banked) > 31

    output = analyse(tmp_path, encode(astronaut, quality=90), [fake(banked)])

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.evidence["matches"][0]["variant"] == "centre_crop_80"


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_unrelated_photos_cropped_or_not_match_no_banked_photo(tmp_path: Path, astronaut_hash: str, name: str) -> None:
    photo = Image.fromarray(getattr(data, name)())
    w, h = photo.size
    for image in (photo, photo.crop((w // 20, h // 20, w - w // 20, h - h // 20))):
        output = analyse(tmp_path, encode(image, quality=85), [fake(astronaut_hash), original(astronaut_hash)])
        assert output.evidence["matches"] == []
        assert output.probability is None


@pytest.mark.parametrize(
    "transpose", [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.FLIP_LEFT_RIGHT]
)
def test_a_rotated_or_mirrored_fake_matches_through_the_dihedral_variants(
    tmp_path: Path, astronaut: Image.Image, astronaut_hash: str, transpose: Image.Transpose
) -> None:
    turned = astronaut.transpose(transpose)
    assert hamming(pdq_hash(turned)[0], astronaut_hash) > 31  # the plain hash alone would miss it

    output = analyse(tmp_path, encode(turned, quality=95), [fake(astronaut_hash)])

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.evidence["matches"][0]["variant"] != "original"


def test_a_banked_original_pulls_towards_authentic(tmp_path: Path, astronaut: Image.Image, astronaut_hash: str) -> None:
    output = analyse(tmp_path, encode(astronaut, quality=90), [original(astronaut_hash)])

    assert output.decisive == [Decisive.KNOWN_AUTHENTIC]
    assert output.probability is not None and output.probability < 0.3
    assert output.reasons[0].category == Category.AUTHENTIC


def test_a_fake_match_wins_over_an_original_match(tmp_path: Path, astronaut: Image.Image, astronaut_hash: str) -> None:
    output = analyse(tmp_path, encode(astronaut), [original(astronaut_hash), fake(astronaut_hash)])

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert {m["bank_kind"] for m in output.evidence["matches"]} == {"known_fake", "known_authentic"}


def test_an_unknown_image_is_not_evidence_either_way(tmp_path: Path, astronaut_hash: str) -> None:
    coffee = Image.fromarray(data.coffee())

    output = analyse(tmp_path, encode(coffee), [fake(astronaut_hash), original(astronaut_hash)])

    assert output.status == "ok"
    assert output.probability is None
    assert output.decisive == []
    assert output.evidence["matches"] == []
    assert len(output.evidence["pdq_hash"]) == 64
    assert output.evidence["quality"] >= 50
    json.dumps(output.evidence)


def test_without_banks_the_image_is_still_hashed(tmp_path: Path, astronaut: Image.Image) -> None:
    output = analyse(tmp_path, encode(astronaut))

    assert output.status == "ok" and output.probability is None
    assert output.evidence["bank_size"] == 0


def test_a_flat_image_abstains_for_low_quality(tmp_path: Path) -> None:
    grey = Image.new("RGB", (256, 256), (128, 128, 128))

    output = analyse(tmp_path, encode(grey))

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.LOW_QUALITY
    assert output.evidence["quality"] < 50


def test_a_one_pixel_image_abstains_for_low_quality(tmp_path: Path) -> None:
    output = analyse(tmp_path, encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"))

    assert output.abstain_code == AbstainCode.LOW_QUALITY


def test_a_corrupt_file_abstains_as_unreadable(tmp_path: Path, astronaut: Image.Image) -> None:
    truncated = encode(astronaut)[:300]

    for content in (b"not an image at all", truncated):
        output = analyse(tmp_path, content)

        assert output.status == "abstained"
        assert output.abstain_code == AbstainCode.UNREADABLE


def test_malformed_bank_hashes_are_skipped_without_hiding_good_ones(
    tmp_path: Path, astronaut: Image.Image, astronaut_hash: str
) -> None:
    banks = [fake("zz" * 32), fake("abc"), fake(astronaut_hash, label="good")]

    output = analyse(tmp_path, encode(astronaut), banks)

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.evidence["matches"][0]["label"] == "good"


def test_a_hundred_thousand_hash_bank_is_searched_quickly(
    tmp_path: Path, astronaut: Image.Image, astronaut_hash: str
) -> None:
    rng = np.random.default_rng(7)
    noise = [rng.bytes(32).hex() for _ in range(100_000)]
    banks = [fake(h, label="noise") for h in noise] + [fake(astronaut_hash, label="needle")]
    content = encode(astronaut)

    started = time.perf_counter()
    output = analyse(tmp_path, content, banks)
    elapsed = time.perf_counter() - started

    # Random 256-bit hashes sit ~128 bits apart, far outside the threshold.
    assert [m["label"] for m in output.evidence["matches"]] == ["needle"]
    assert elapsed < 2.0


def test_a_video_is_matched_by_its_frame_sequence_and_an_unreadable_one_abstains(tmp_path: Path) -> None:
    # Known videos (tests/analysis/test_known_videos.py): the detector applies to videos now.
    path = tmp_path / "v.mp4"
    path.write_bytes(b"not a video at all")
    media = MediaInput(path=path, kind="video", mime="video/mp4", size=18)

    assert detector.applies(media) is None
    output = detector.run(media, DetectorContext())
    assert output.status == "abstained" and output.reasons[0].code == AbstainCode.UNREADABLE
