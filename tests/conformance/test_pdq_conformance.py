"""PDQ hashing against ThreatExchange's reference hashes in ../shared/testdata/pdq (opt-in; skipped when absent).

Override the folder with HLEKKR_TESTDATA. expected.json lists, per file, hashes from the Python, C++, Java and
WASM reference implementations. They disagree among themselves by a few bits, and we hash a 512 px thumbnail,
so we compare by Hamming distance (at most 16 bits) rather than equality. The bridge-N files are rotations and
flips of bridge-1-original; with the original banked, each must match through a dihedral variant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from analysis.detectors.base import Decisive, DetectorContext, HashBankEntry, MediaInput
from analysis.detectors.known_content import KnownContentDetector, hamming, pdq_hash

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(os.environ.get("HLEKKR_TESTDATA") or REPO_ROOT.parent / "shared" / "testdata")
PDQ_DIR = TESTDATA / "pdq"

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not PDQ_DIR.is_dir(), reason=f"no reference media at {PDQ_DIR}"),
]

MAX_REFERENCE_DISTANCE = 16

# File-name transform of the query -> the dihedral variant of the query that lines up with the original.
# Rotations invert (a copy turned 90 degrees is turned back by 270); flips are their own inverse.
BRIDGE_VARIANTS = {
    "bridge-1-original.jpg": "original",
    "bridge-2-rotate-90.jpg": "rotate_270",
    "bridge-3-rotate-180.jpg": "rotate_180",
    "bridge-4-rotate-270.jpg": "rotate_90",
    "bridge-5-flipx.jpg": "flip_x",
    "bridge-6-flipy.jpg": "flip_y",
    "bridge-7-flip-plus-1.jpg": "flip_plus_1",
    "bridge-8-flip-minus-1.jpg": "flip_minus_1",
}


def expected_pdq() -> dict[str, list[dict[str, Any]]]:
    path = TESTDATA / "expected.json"
    return json.loads(path.read_text()).get("pdq", {}) if path.is_file() else {}


def media(name: str) -> MediaInput:
    path = PDQ_DIR / name
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    return MediaInput(path=path, kind="image", mime=mime, size=path.stat().st_size, filename=name)


@pytest.mark.parametrize("name", sorted(expected_pdq()), ids=str)
def test_the_hash_is_within_16_bits_of_every_reference_implementation(name: str) -> None:
    with Image.open(PDQ_DIR / name) as image:
        ours, quality = pdq_hash(image)

    for reference in expected_pdq()[name]:
        distance = hamming(ours, reference["reference_hash"])
        assert distance <= MAX_REFERENCE_DISTANCE, (reference["reference"], distance)
        if reference.get("reference_quality") is not None:
            assert quality == int(reference["reference_quality"])


def test_the_tiny_reference_image_has_quality_zero_and_is_abstained_on() -> None:
    with Image.open(PDQ_DIR / "small.jpg") as image:
        _, quality = pdq_hash(image)

    output = KnownContentDetector().run(media("small.jpg"), DetectorContext())

    assert quality == 0
    assert output.status == "abstained" and output.evidence["quality"] == 0


@pytest.mark.parametrize("name", sorted(BRIDGE_VARIANTS), ids=str)
def test_rotations_and_flips_match_the_banked_original_through_a_dihedral_variant(name: str) -> None:
    banked = [
        HashBankEntry(bank="reference", bank_kind="known_fake", hash_hex=ref["reference_hash"], label=ref["reference"])
        for ref in expected_pdq()["bridge-1-original.jpg"]
    ]

    output = KnownContentDetector().run(media(name), DetectorContext(hash_banks=banked))

    assert output.decisive == [Decisive.KNOWN_FAKE]
    assert output.evidence["match_count"] == len(banked)
    assert {m["variant"] for m in output.evidence["matches"]} == {BRIDGE_VARIANTS[name]}
    assert max(m["distance"] for m in output.evidence["matches"]) <= 31
