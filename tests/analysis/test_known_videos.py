"""Known videos: a banked fake matches its re-encoded, trimmed and resized copies with the offending segment's
time range; an unrelated video does not; import_hashes banks signature files (ours and vPDQ's)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from video_samples import make_video

from analysis.detectors.base import DetectorContext, MediaInput
from analysis.detectors.known_content import KnownContentDetector
from analysis.detectors.video_signature import (
    BankedVideoEntry,
    FrameHash,
    SignatureFileError,
    VideoIndex,
    compute_signature,
    read_signature_file,
)
from analysis.models import BankedVideo, HashBank
from analysis.selectors import video_bank_index


@pytest.fixture(scope="module")
def videos(tmp_path_factory: Any) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "fake": make_video(folder / "fake.mp4", seed=1, seconds=12),
        # the same scenes, re-encoded at a much lower quality, from second 4 to 10, at 2/3 the size
        "trimmed": make_video(folder / "trimmed.mp4", seed=1, seconds=6, start_second=4, size=(128, 96), quality=14),
        "reencoded": make_video(folder / "reencoded.mp4", seed=1, seconds=12, codec="libx264", size=(160, 120)),
        "other": make_video(folder / "other.mp4", seed=2, seconds=12),
    }


@pytest.fixture(scope="module")
def fake_index(videos: dict[str, Path]) -> VideoIndex:
    return VideoIndex.build(
        [BankedVideoEntry(7, "fakes", "known_fake", "staged clip", compute_signature(videos["fake"]))]
    )


def test_a_trimmed_resized_reencoded_copy_matches_with_its_time_range(
    videos: dict[str, Path], fake_index: VideoIndex
) -> None:
    [match] = fake_index.match(compute_signature(videos["trimmed"]))
    assert (match.video_id, match.bank_kind) == (7, "known_fake")
    assert (match.query_start, match.query_end) == (0.0, 6.0)  # the whole copy is the offending segment
    assert (match.bank_start, match.bank_end) == (4.0, 10.0)  # which is seconds 4-10 of the banked fake
    assert match.matched_frames == 6 and match.query_coverage == 1.0


def test_a_copy_in_another_codec_matches_end_to_end(videos: dict[str, Path], fake_index: VideoIndex) -> None:
    [match] = fake_index.match(compute_signature(videos["reencoded"]))
    assert (match.query_start, match.query_end, match.matched_frames) == (0.0, 12.0, 12)


def test_an_unrelated_video_does_not_match(videos: dict[str, Path], fake_index: VideoIndex) -> None:
    assert fake_index.match(compute_signature(videos["other"])) == []


def test_scattered_chance_pairs_without_a_common_offset_do_not_match() -> None:
    same = "f0" * 32
    banked = [FrameHash(float(t), same if t in (0, 5, 9) else f"{t:02x}" * 32, 100) for t in range(10)]
    index = VideoIndex.build([BankedVideoEntry(1, "b", "known_fake", "", banked)])
    query = [FrameHash(0.0, same, 100)] + [FrameHash(float(t), f"{t + 40:02x}" * 32, 100) for t in range(1, 10)]
    assert index.match(query) == []  # one frame (a title card) agrees, three are needed


def test_the_detector_reports_a_known_fake_video_with_the_segment(
    videos: dict[str, Path], fake_index: VideoIndex
) -> None:
    media = MediaInput(path=videos["trimmed"], kind="video", mime="video/mp4", size=videos["trimmed"].stat().st_size)
    output = KnownContentDetector().run(media, DetectorContext(video_bank=fake_index))
    assert output.status == "ok" and output.probability is not None and output.probability > 0.9
    assert [str(d) for d in output.decisive] == ["known_fake"]
    assert output.evidence["matches"][0]["segment"] == {"start_s": 0.0, "end_s": 6.0}
    assert "Seconds 0-6 match a known fake video" in output.reasons[0].text


def test_the_detector_finds_nothing_without_banked_videos(videos: dict[str, Path]) -> None:
    media = MediaInput(path=videos["other"], kind="video", mime="video/mp4", size=1)
    output = KnownContentDetector().run(media, DetectorContext(video_bank=VideoIndex()))
    assert output.status == "ok" and output.probability is None and output.evidence["match_count"] == 0


def test_import_hashes_banks_signature_files_and_the_detector_context_loads_them(
    db: Any, videos: dict[str, Path], tmp_path: Path
) -> None:
    signature = tmp_path / "fake.json"
    call_command("video_signature", str(videos["fake"]), "-o", str(signature), "--label", "staged clip")
    vpdq = tmp_path / "other.vpdq"  # vPDQ's text output: frame_number,quality,pdq_hex,timestamp
    vpdq.write_text(
        "\n".join(f"{i},{f.quality},{f.hash_hex},{f.t}" for i, f in enumerate(compute_signature(videos["other"])))
    )
    out = io.StringIO()

    call_command("import_hashes", "fake-videos", str(signature), str(vpdq), "--kind", "known_fake", stdout=out)
    call_command("import_hashes", "fake-videos", str(signature), stdout=out)  # again: a duplicate

    assert BankedVideo.objects.count() == 2
    assert BankedVideo.objects.get(label="staged clip").frame_count == 12
    assert "imported video 'staged clip' (12 frames)" in out.getvalue() and "skipped (duplicate)" in out.getvalue()
    index = video_bank_index()
    assert len(index) == 2
    [match] = [m for m in index.match(compute_signature(videos["trimmed"])) if m.label == "staged clip"]
    assert (match.bank_start, match.bank_end) == (4.0, 10.0)
    HashBank.objects.update(is_active=False)
    assert len(video_bank_index()) == 0


def test_a_malformed_signature_file_is_reported_and_skipped(db: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "hlekkr-frame-pdq/1", "frames": [[0, "xyz", 80]]}))
    err, out = io.StringIO(), io.StringIO()
    call_command("import_hashes", "v", str(bad), "--kind", "known_fake", stdout=out, stderr=err)
    assert "64 hexadecimal" in err.getvalue() and BankedVideo.objects.count() == 0
    with pytest.raises(SignatureFileError):
        read_signature_file(bad)
