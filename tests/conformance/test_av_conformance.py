"""Audio and video detectors against real third-party files in ../shared/testdata (opt-in; skipped when absent).

Override the folder with HLEKKR_TESTDATA. The README there says broken audio samples must be refused or abstained
on, never crash a worker, and that both MP4s are decodable H.264 whose frame sampling must cope with odd/padded
dimensions.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import pytest

from analysis.detectors.audio import AudioDetector
from analysis.detectors.base import Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.video import VideoDetector

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(os.environ.get("HLEKKR_TESTDATA") or REPO_ROOT.parent / "shared" / "testdata")

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"no reference media at {TESTDATA}"),
]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac"}
# Files that cannot be decoded at all: the detector must abstain with a typed reason.
UNDECODABLE = {"invalid_file.wav": "unreadable", "empty_file.flac": "no_samples"}
# Decodable sound under a broken tag header: judged (refusing would let anyone dodge analysis by breaking a tag),
# with the broken header reported.
BROKEN_METADATA = {"corrupt_metadata.ogg"}


def audio_files() -> list[Path]:
    root = TESTDATA / "audio"
    return sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES) if root.is_dir() else []


def video_files() -> list[Path]:
    root = TESTDATA / "video"
    return sorted(root.glob("*.mp4")) if root.is_dir() else []


class SizeRecorder(Detector):
    name = "size_recorder"
    version = "test"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        image = media.open_image()
        image.load()
        self.sizes.append(image.size)
        return DetectorOutput(status="ok", probability=0.2)


def media(path: Path, kind: Literal["image", "video", "audio"]) -> MediaInput:
    return MediaInput(
        path=path,
        kind=kind,
        mime="application/octet-stream",
        size=path.stat().st_size,
        filename=path.name,
    )


@pytest.mark.parametrize("path", audio_files(), ids=lambda p: p.name)
def test_every_audio_sample_is_analysed_or_abstained_with_a_typed_reason(path: Path) -> None:
    output = AudioDetector().run(media(path, "audio"), DetectorContext())

    assert output.status in {"ok", "abstained"}
    if output.status == "abstained":
        assert output.abstain_code is not None
    else:
        assert output.probability is not None and output.evidence["container"]["sample_rate"] > 0
    if path.name in UNDECODABLE:
        assert output.status == "abstained" and output.abstain_code == UNDECODABLE[path.name]
    if path.name in BROKEN_METADATA:
        assert output.status == "abstained" or any(r.code == "audio_malformed_metadata" for r in output.reasons)


def test_the_broken_audio_samples_are_present() -> None:
    names = {p.name for p in audio_files()}
    assert set(UNDECODABLE) | BROKEN_METADATA <= names


@pytest.mark.parametrize("path", video_files(), ids=lambda p: p.name)
def test_every_video_decodes_and_frames_are_sampled_at_their_true_size(path: Path) -> None:
    recorder = SizeRecorder()
    started = time.monotonic()

    output = VideoDetector([recorder]).run(media(path, "video"), DetectorContext())

    assert output.status == "ok", output.reasons
    facts = output.evidence["container"]["video"]
    assert facts["codec"] == "h264"
    assert output.evidence["sampled_frames"] >= 8
    assert set(recorder.sizes) == {(facts["width"], facts["height"])}
    assert output.evidence["timeline"] and all(entry["max_p"] == 0.2 for entry in output.evidence["timeline"])
    assert time.monotonic() - started < VideoDetector.time_budget_s
