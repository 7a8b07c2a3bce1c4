"""Metadata detector against real third-party files in ../shared/testdata (opt-in; skipped when absent).

Override the folder with HLEKKR_TESTDATA. expected.json records what the reference tools report: the generator
for generator-metadata/ (the file name prefix before "__") and exifread's tag values for exif/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from analysis.detectors.base import DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.metadata import MetadataDetector

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(os.environ.get("HLEKKR_TESTDATA") or REPO_ROOT.parent / "shared" / "testdata")

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"no reference media at {TESTDATA}"),
]


def expected() -> dict[str, Any]:
    path = TESTDATA / "expected.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def files(folder: str) -> list[Path]:
    root = TESTDATA / folder
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})


def run(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size, filename=path.name)
    out = MetadataDetector().run(media, DetectorContext())
    json.dumps(out.evidence)
    return out


@pytest.mark.parametrize("path", files("generator-metadata"), ids=lambda p: p.name)
def test_it_names_the_generator_of_every_reference_file(path: Path) -> None:
    generator = path.name.split("__", 1)[0]
    out = run(path)
    assert out.status == "ok"
    assert out.evidence.get("generator") == generator
    assert out.probability is not None and out.probability >= 0.9


EXIF_FIELDS = {"Image Make": "make", "Image Model": "model", "Image Software": "software"}


@pytest.mark.parametrize("path", files("exif"), ids=lambda p: p.name)
def test_it_reads_camera_fields_as_exifread_reports_them(path: Path) -> None:
    want = expected().get("exif", {}).get(path.name, {})
    out = run(path)  # the invalid-EXIF sample must not crash; it may abstain
    assert out.status in {"ok", "abstained"}
    for tag, key in EXIF_FIELDS.items():
        if tag in want:
            assert out.evidence[key] == want[tag], tag
    if "EXIF DateTimeOriginal" in want:
        assert out.evidence["capture_date"] == want["EXIF DateTimeOriginal"]
    if "GIMP" in want.get("Image Software", ""):
        assert "GIMP" in out.evidence["editing_software"]
        assert out.probability is not None and out.probability < 0.35
