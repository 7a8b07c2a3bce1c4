"""VideoDetector on videos the tests encode themselves with PyAV (no database, no shared test data)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from PIL import Image

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
)
from analysis.detectors.video import VideoDetector, aggregate_frame_probabilities


class RecordingFrameDetector(Detector):
    """Stands in for the image detectors: opens each frame and scores it by its brightness."""

    name = "recorder"
    version = "test"

    def __init__(self, bright_p: float = 0.9, dark_p: float = 0.1) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.bright_p, self.dark_p = bright_p, dark_p

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        image = media.open_image().convert("RGB")
        self.sizes.append(image.size)
        bright = float(np.asarray(image).mean()) > 128
        return DetectorOutput(
            status="ok", probability=self.bright_p if bright else self.dark_p, evidence={"face_count": 2}
        )


class ExplodingFrameDetector(Detector):
    name = "exploding"
    version = "test"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise RuntimeError("boom")


def encode(
    path: Path,
    *,
    width: int,
    height: int,
    frames: int,
    codec: str,
    pix_fmt: str = "yuv420p",
    bright_from: int | None = None,
) -> Path:
    with av.open(str(path), "w") as container:
        stream = cast(av.VideoStream, container.add_stream(codec, rate=25))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        rng = np.random.default_rng(0)
        for i in range(frames):
            level = 200 if bright_from is not None and i >= bright_from else 40
            pixels = np.clip(rng.normal(level, 10, (height, width, 3)), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def media_for(path: Path) -> MediaInput:
    return MediaInput(path=path, kind="video", mime="video/mp4", size=path.stat().st_size, filename=path.name)


def run(path: Path, *detectors: Detector, **options: int) -> DetectorOutput:
    return VideoDetector(list(detectors), **options).run(media_for(path), DetectorContext())


@pytest.fixture(scope="module")
def h264_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Encoded once per module: the detector only reads it.
    return encode(tmp_path_factory.mktemp("video") / "clip.mp4", width=320, height=240, frames=50, codec="libx264")


def test_it_reports_container_facts_and_samples_frames(h264_video: Path) -> None:
    recorder = RecordingFrameDetector()
    output = run(h264_video, recorder)

    assert output.status == "ok"
    container = output.evidence["container"]
    assert container["format"].startswith("mov")
    assert container["video"]["codec"] == "h264"
    assert (container["video"]["width"], container["video"]["height"]) == (320, 240)
    assert container["video"]["fps"] == 25.0
    assert container["video"]["frames"] == 50
    assert container["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert any(e.startswith("Lavf") for e in container["encoders"])
    assert len(recorder.sizes) == output.evidence["sampled_frames"] == 16
    assert set(recorder.sizes) == {(320, 240)}


def test_it_treats_the_encoder_tag_as_a_fact_not_evidence(h264_video: Path) -> None:
    output = run(h264_video, RecordingFrameDetector())

    encoder_reasons = [r for r in output.reasons if r.code == "video_encoder"]
    assert encoder_reasons and encoder_reasons[0].category == Category.INFO
    assert not [r for r in output.reasons if r.category in {Category.MANIPULATED, Category.GENERATED}]


def test_it_builds_a_timeline_of_frame_scores(h264_video: Path) -> None:
    output = run(h264_video, RecordingFrameDetector())

    timeline = output.evidence["timeline"]
    assert [entry["frame_index"] for entry in timeline] == sorted(e["frame_index"] for e in timeline)
    assert timeline[0]["t"] == 0.0 and timeline[-1]["t"] <= 2.0
    assert all(entry["scores"] == {"recorder": 0.1} and entry["max_p"] == 0.1 for entry in timeline)
    assert output.probability == pytest.approx(0.1)
    assert output.evidence["suspicious_frames"] == []


def test_it_lists_suspicious_frames_when_many_frames_agree(tmp_path: Path) -> None:
    video = encode(tmp_path / "half.mp4", width=160, height=120, frames=40, codec="libx264", bright_from=20)

    output = run(video, RecordingFrameDetector())

    suspicious = output.evidence["suspicious_frames"]
    assert suspicious and all(frame["t"] >= 0.75 for frame in suspicious)
    assert output.probability is not None and output.probability >= 0.8
    assert any(r.code == "video_suspicious_frames" and r.category == Category.MANIPULATED for r in output.reasons)


def test_one_wild_frame_does_not_decide_the_video() -> None:
    def aggregate(scores: list[float]) -> float:
        value = aggregate_frame_probabilities(scores)
        assert value is not None
        return value

    assert aggregate([0.1] * 15 + [0.99]) < 0.5
    assert aggregate([0.1] * 14 + [0.99, 0.99]) < 0.8
    assert aggregate([0.9] * 16) == pytest.approx(0.9)
    # Frames wobbling just above neutral (as ELA does on compressed video) are not agreement.
    assert aggregate([0.2] * 11 + [0.52, 0.55, 0.58, 0.68, 0.8]) < 0.6
    assert aggregate_frame_probabilities([]) is None


def test_it_notes_faces_for_routing(h264_video: Path) -> None:
    output = run(h264_video, RecordingFrameDetector())

    assert output.evidence["face_count"] == 2
    assert any(r.code == "video_faces" for r in output.reasons)


def test_a_failing_frame_detector_is_recorded_not_raised(h264_video: Path) -> None:
    output = run(h264_video, ExplodingFrameDetector(), RecordingFrameDetector())

    assert output.status == "ok"
    assert output.evidence["frame_detectors"]["exploding"]["error"] == 16
    assert output.probability == pytest.approx(0.1)


def test_it_samples_odd_dimensions_that_the_encoder_crops_from_padding(tmp_path: Path) -> None:
    # H.264 codes whole macroblocks: a 321x241 picture is stored padded and cropped by the SPS, as phones do.
    # yuv420p cannot hold odd sizes in libx264, so 4:4:4 is how such files actually arrive.
    video = encode(tmp_path / "odd.mp4", width=321, height=241, frames=12, codec="libx264", pix_fmt="yuv444p")
    recorder = RecordingFrameDetector()

    output = run(video, recorder)

    assert output.status == "ok"
    assert set(recorder.sizes) == {(321, 241)}
    assert output.evidence["container"]["video"]["width"] == 321


def test_it_samples_odd_dimensions_in_420_mpeg4(tmp_path: Path) -> None:
    video = encode(tmp_path / "odd.mp4", width=321, height=241, frames=12, codec="mpeg4")
    recorder = RecordingFrameDetector()

    output = run(video, recorder)

    assert output.status == "ok" and set(recorder.sizes) == {(321, 241)}
    assert len(recorder.sizes) == 12


def test_it_seeks_to_keyframes_in_long_videos(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "25", "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(750):
            pixels = np.full((48, 64, 3), i % 250, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    output = run(path, RecordingFrameDetector(), sequential_frame_limit=100)

    assert output.evidence["container"]["sampling"] == "keyframe_seek"
    indexes = [entry["frame_index"] for entry in output.evidence["timeline"]]
    assert len(indexes) == 16 and all(i % 25 == 0 for i in indexes)
    assert indexes[-1] >= 600


def test_it_downscales_huge_frames_before_the_image_detectors(tmp_path: Path) -> None:
    video = encode(tmp_path / "big.mp4", width=640, height=360, frames=3, codec="libx264")
    recorder = RecordingFrameDetector()

    run(video, recorder, max_frame_side=320)

    assert set(recorder.sizes) == {(320, 180)}


def test_it_reports_an_edit_list_with_several_segments(tmp_path: Path) -> None:
    from analysis.detectors.video import _parse_elst

    entry = (1000).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"\x00\x01\x00\x00"
    second = (1000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + b"\x00\x01\x00\x00"
    box = b"\x00\x00\x00\x00" + (2).to_bytes(4, "big") + entry + second

    entries = _parse_elst(box)

    assert [e["media_time"] for e in entries] == [0, 5000] and entries[0]["rate"] == 1.0


def test_it_abstains_on_a_zero_length_video_stream(tmp_path: Path) -> None:
    # Matroska keeps a video track that never received a packet (MP4 would drop it); an audio track
    # carries the file.
    path = tmp_path / "empty_video.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)

    output = run(path, RecordingFrameDetector())

    assert output.status == "abstained" and output.abstain_code == AbstainCode.NO_FRAMES
    assert output.evidence["container"]["video"]["width"] == 320


def test_it_abstains_on_a_file_without_a_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), "w") as container:
        audio = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        for packet in [*audio.encode(frame), *audio.encode()]:
            container.mux(packet)

    output = run(path, RecordingFrameDetector())

    assert output.abstain_code == AbstainCode.NO_FRAMES


def test_it_abstains_on_corrupt_bytes(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)

    output = run(path, RecordingFrameDetector())

    assert output.status == "abstained" and output.abstain_code == AbstainCode.UNREADABLE


def test_a_still_image_posing_as_video_is_one_frame(tmp_path: Path) -> None:
    # FFmpeg reads a JPEG as a one-frame stream; judging that frame is more useful than refusing.
    path = tmp_path / "picture.mp4"
    Image.new("RGB", (8, 8)).save(path, format="JPEG")

    output = run(path, RecordingFrameDetector())

    assert output.status == "ok" and output.evidence["sampled_frames"] == 1


def test_it_abstains_on_a_truncated_file(h264_video: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(h264_video.read_bytes()[:600])

    output = run(truncated, RecordingFrameDetector())

    assert output.status == "abstained"
    assert output.abstain_code in {AbstainCode.UNREADABLE, AbstainCode.NO_FRAMES}


def test_it_refuses_images_before_any_work() -> None:
    media = MediaInput(path=Path("x.png"), kind="image", mime="image/png", size=1)

    refusal = VideoDetector([]).applies(media)

    assert refusal is not None and refusal.abstain_code == AbstainCode.UNSUPPORTED_KIND


def test_without_frame_detectors_it_reports_facts_only(h264_video: Path) -> None:
    output = run(h264_video)

    assert output.status == "ok" and output.probability is None
    assert output.evidence["sampled_frames"] == 16
