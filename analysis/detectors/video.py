"""Video: container facts, frame sampling and the image detectors run on sampled frames.

The detector never holds a decoded video: it samples at most `max_frames` frames (keyframes for long videos,
evenly spaced frames for short ones), writes each as a PNG into a temporary folder, and hands them to the
image detectors as ordinary image inputs. Their per-frame probabilities become a timeline; the video's
probability is a high quantile of the per-frame maxima, pulled towards "no evidence" (0.5) when only a few
frames agree, because one odd frame in a compressed stream is far more often noise than a splice.

Container oddities (variable frame rate, tracks of different lengths, MP4 edit lists) are reported as facts:
they say software touched the file, not that its content was altered. Frame-difference jumps between sparse
samples are deliberately *not* used: with 16 frames from a minute of video every sample is a "cut".
"""

from __future__ import annotations

import hashlib
import logging
import math
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)
from analysis.detectors.copy_move import CopyMoveDetector
from analysis.detectors.ela import ElaDetector
from analysis.detectors.faces import FacesDetector
from analysis.detectors.spectral import SpectralDetector

logger = logging.getLogger(__name__)

SUSPICIOUS_FRAME_P = 0.7  # a frame whose strongest detector says this much is listed for review
_NEUTRAL_P = 0.5  # logit 0: "no evidence either way" in the scoring's log-odds combination
# A frame "agrees" only when clearly above neutral: compressed video frames wobble around 0.5 in ELA-like
# detectors, and counting those as agreement turned one hot frame into a video-level alarm.
_AGREEING_P = 0.6


def default_frame_detectors() -> list[Detector]:
    """The image detectors every sampled frame goes through (none of them needs configuration)."""
    return [ElaDetector(), SpectralDetector(), CopyMoveDetector(), FacesDetector()]


@dataclass
class _Sample:
    t: float
    frame_index: int
    path: Path
    width: int
    height: int


@dataclass
class _FrameResult:
    sample: _Sample
    scores: dict[str, float] = field(default_factory=dict)
    face_count: int | None = None

    @property
    def max_p(self) -> float | None:
        return max(self.scores.values()) if self.scores else None


class VideoDetector(Detector):
    """Container facts, sampled frames through the image detectors, and a timeline of suspicious frames."""

    name = "video"
    version = "1.0"
    kinds = frozenset({"video"})
    time_budget_s = 60.0

    def __init__(
        self,
        frame_detectors: Sequence[Detector] | None = None,
        *,
        max_frames: int = 16,
        max_frame_side: int = 1280,
        sequential_frame_limit: int = 600,
    ) -> None:
        self._frame_detectors = list(frame_detectors) if frame_detectors is not None else None
        self.max_frames = max_frames
        # Frames above this are downscaled before the image detectors: their cost grows with pixels and a
        # compressed 4K frame carries no more forensic signal per pixel than a 1280 px one.
        self.max_frame_side = max_frame_side
        # Short videos are decoded front to back (exact, cheap); longer ones are sampled by seeking.
        self.sequential_frame_limit = sequential_frame_limit

    @property
    def frame_detectors(self) -> list[Detector]:
        if self._frame_detectors is None:
            self._frame_detectors = default_frame_detectors()
        return self._frame_detectors

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        started = time.monotonic()
        try:
            container = av.open(str(media.path), mode="r", metadata_errors="replace")
        except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as exc:
            return DetectorOutput.abstain(
                AbstainCode.UNREADABLE, "The video container could not be opened.", error=_short(exc)
            )
        with container:
            facts = _container_facts(container)
            if not container.streams.video:
                return DetectorOutput.abstain(AbstainCode.NO_FRAMES, "The file has no video stream.", container=facts)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            reasons, anomalies = _container_reasons(container, stream, facts, media.path)
            facts["anomalies"] = anomalies
            with tempfile.TemporaryDirectory(prefix="hlekkr-video-") as tmp:
                try:
                    samples, rotation, strategy = self._sample_frames(
                        container, stream, Path(tmp), deadline=started + 0.4 * self.time_budget_s
                    )
                except av.error.FFmpegError as exc:
                    return DetectorOutput.abstain(
                        AbstainCode.UNREADABLE,
                        "The video stream could not be decoded.",
                        container=facts,
                        error=_short(exc),
                    )
                if not samples:
                    return DetectorOutput.abstain(
                        AbstainCode.NO_FRAMES, "The video stream has no decodable frames.", container=facts
                    )
                facts["sampling"] = strategy
                if rotation:
                    facts["video"]["rotation"] = rotation
                decode_s = time.monotonic() - started
                results, detector_notes, exhausted = self._run_frame_detectors(samples, context, started)
        return self._summarise(facts, reasons, samples, results, detector_notes, exhausted, decode_s, started)

    # --- sampling -------------------------------------------------------------------------------------

    def _sample_frames(
        self, container: InputContainer, stream: VideoStream, folder: Path, deadline: float
    ) -> tuple[list[_Sample], float, str]:
        """At most `max_frames` RGB frames written as PNGs, plus the display rotation and the strategy used.

        Short videos: decode everything, keep an even spread. Long videos with a keyframe index (MP4):
        seek to evenly chosen keyframes. Long videos without one: decode keyframes only (the decoder skips
        the rest), and only if that finds too few, decode everything within the time limit.
        """
        fps = _fps(stream)
        frame_count = _frame_count(stream, container, fps)
        keyframe_times = _keyframe_times(stream)
        frames: list[tuple[int | None, VideoFrame]]
        if frame_count is None or frame_count <= self.sequential_frame_limit:
            strategy = "sequential"
            frames = self._sequential(container, stream, deadline)
        elif len(keyframe_times) >= self.max_frames // 2:
            strategy = "keyframe_seek"
            frames = list(self._seeking(container, stream, _evenly_spaced(keyframe_times, self.max_frames)))
        else:
            strategy = "keyframes_only"
            frames = self._sequential(container, stream, deadline, keyframes_only=True)
            if len(frames) < self.max_frames // 2:
                strategy = "sequential"
                container.seek(0)
                frames = self._sequential(container, stream, deadline)

        samples: list[_Sample] = []
        rotation = 0.0
        for i, (ordinal, frame) in enumerate(frames):
            t = float(frame.time) if frame.time is not None else 0.0
            # Full decoding knows the true index; otherwise it is estimated from the timestamp.
            index = ordinal if ordinal is not None else (round(t * fps) if fps else i)
            rotation = rotation or float(getattr(frame, "rotation", 0) or 0)
            image = frame.to_image()  # RGB; odd sizes are fine, the decoder has already cropped the padding
            if max(image.size) > self.max_frame_side:
                image.thumbnail((self.max_frame_side, self.max_frame_side))
            path = folder / f"frame_{i:03d}_{index}.png"
            image.save(path, format="PNG", compress_level=1)  # fast; the files live for seconds
            samples.append(_Sample(t=round(t, 3), frame_index=index, path=path, width=frame.width, height=frame.height))
        return samples, rotation, strategy

    def _sequential(
        self, container: InputContainer, stream: VideoStream, deadline: float, *, keyframes_only: bool = False
    ) -> list[tuple[int | None, VideoFrame]]:
        """Decode from the start, keeping an evenly thinned set of frames (never the whole video).

        The kept set is halved whenever it grows past twice the sample size, so memory stays bounded
        and the result is evenly spread even when the container's frame count is missing or wrong.
        Stops at the deadline: a long single-GOP video is then sampled over its beginning only.
        """
        stream.codec_context.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
        kept: list[tuple[int | None, VideoFrame]] = []
        stride = 1
        try:
            for ordinal, frame in enumerate(_decode_tolerantly(container, stream)):
                if ordinal % 32 == 0 and time.monotonic() > deadline:
                    break
                if ordinal % stride:
                    continue
                # With keyframes only the ordinal counts keyframes, not frames: estimate the index later.
                kept.append((None if keyframes_only else ordinal, frame))
                if len(kept) > 2 * self.max_frames:
                    stride *= 2
                    kept = kept[::2]
        finally:
            stream.codec_context.skip_frame = "DEFAULT"
        return _evenly_spaced(kept, self.max_frames)

    def _seeking(
        self, container: InputContainer, stream: VideoStream, targets: list[float]
    ) -> Iterator[tuple[int | None, VideoFrame]]:
        """Seek near each keyframe time and keep the first keyframe at or after it (bounded per seek).

        Index timestamps are decode times, which can run a frame or two ahead of presentation times,
        so the first *key* frame at or after the target is the keyframe that was asked for.
        """
        time_base = stream.time_base or Fraction(1, 1000)
        start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        last_pts: int | None = None
        for target in targets:
            try:
                container.seek(int((start + target) / time_base), stream=stream, backward=True)
            except av.error.FFmpegError:
                continue
            for decoded, frame in enumerate(_decode_tolerantly(container, stream)):
                if decoded > 300:  # a pathological GOP: give up on this target rather than the budget
                    break
                if not frame.key_frame or (frame.time is not None and frame.time + 1e-3 < start + target):
                    continue
                if frame.pts != last_pts:
                    last_pts = frame.pts
                    yield None, frame
                break

    # --- frame detectors ------------------------------------------------------------------------------

    def _run_frame_detectors(
        self, samples: list[_Sample], context: DetectorContext, started: float
    ) -> tuple[list[_FrameResult], dict[str, dict[str, int]], bool]:
        detectors = self.frame_detectors
        notes: dict[str, dict[str, int]] = {d.name: {"ok": 0, "abstained": 0, "error": 0} for d in detectors}
        results: list[_FrameResult] = []
        exhausted = False
        for sample in samples:
            result = _FrameResult(sample=sample)
            results.append(result)
            if time.monotonic() - started > 0.85 * self.time_budget_s:
                exhausted = True
                continue
            media = _frame_media(sample)
            for detector in detectors:
                output = _run_one(detector, media, context)
                notes[detector.name][output.status] += 1
                if output.status != "ok":
                    continue
                if output.probability is not None:
                    result.scores[detector.name] = round(output.probability, 4)
                faces = _face_count(output.evidence)
                if faces is not None:
                    result.face_count = max(result.face_count or 0, faces)
        return results, notes, exhausted

    # --- output ---------------------------------------------------------------------------------------

    def _summarise(
        self,
        facts: dict[str, Any],
        reasons: list[Reason],
        samples: list[_Sample],
        results: list[_FrameResult],
        detector_notes: dict[str, dict[str, int]],
        exhausted: bool,
        decode_s: float,
        started: float,
    ) -> DetectorOutput:
        timeline = [
            {
                "t": r.sample.t,
                "frame_index": r.sample.frame_index,
                "scores": r.scores,
                "max_p": r.max_p,
            }
            for r in results
        ]
        maxima = [r.max_p for r in results if r.max_p is not None]
        suspicious = [
            {
                "t": r.sample.t,
                "frame_index": r.sample.frame_index,
                "max_p": r.max_p,
                "detector": _top(r.scores),
            }
            for r in results
            if r.max_p is not None and r.max_p >= SUSPICIOUS_FRAME_P
        ]
        probability = aggregate_frame_probabilities(maxima)
        face_counts = [r.face_count for r in results if r.face_count is not None]
        face_count = max(face_counts) if face_counts else None

        reasons = list(reasons)
        first = samples[0]
        reasons.append(
            Reason(
                "video_frames_sampled",
                f"{len(samples)} frames sampled ({first.width}x{first.height}) and examined by "
                f"{len(detector_notes)} image detectors.",
            )
        )
        if len(suspicious) >= 2 and probability is not None and probability >= 0.6:
            times = ", ".join(f"{s['t']:.1f}s" for s in suspicious[:5])
            reasons.append(
                Reason(
                    "video_suspicious_frames",
                    f"{len(suspicious)} of {len(maxima)} sampled frames look altered (at {times}).",
                    Category.MANIPULATED,
                )
            )
        elif suspicious:
            reasons.append(
                Reason(
                    "video_isolated_suspicious_frames",
                    f"{len(suspicious)} of {len(maxima)} sampled frames scored high, too few to agree.",
                )
            )
        if face_count:
            reasons.append(
                Reason("video_faces", f"Faces appear in the sampled frames (up to {face_count} in one frame).")
            )
        if exhausted:
            reasons.append(Reason("video_budget", "The time budget ran out before every sampled frame was examined."))

        evidence = {
            "container": facts,
            "sampled_frames": len(samples),
            "timeline": timeline,
            "suspicious_frames": suspicious,
            "face_count": face_count,
            "frame_detectors": detector_notes,
            "budget_exhausted": exhausted,
            "timings_s": {"decode": round(decode_s, 3), "total": round(time.monotonic() - started, 3)},
        }
        return DetectorOutput(status="ok", probability=probability, reasons=reasons, evidence=evidence)


def aggregate_frame_probabilities(maxima: Sequence[float], *, quantile: float = 0.9) -> float | None:
    """One probability for the video from the per-frame maxima.

    A high quantile rather than the maximum, so one outlier frame cannot decide; evidence above neutral is
    then scaled by the share of frames that agree (p >= 0.6; a quarter of the frames agreeing counts in
    full).
    Evidence below neutral (frames look clean) passes through unchanged.
    """
    if not maxima:
        return None
    values = np.asarray(maxima, dtype=float)
    high = float(np.quantile(values, quantile))
    if high <= _NEUTRAL_P:
        return high
    agreeing = int(np.sum(values >= _AGREEING_P))
    needed = max(2, math.ceil(0.25 * len(values)))
    weight = min(1.0, agreeing / needed) if len(values) > 1 else 0.5
    return float(min(1.0, max(0.0, _NEUTRAL_P + (high - _NEUTRAL_P) * weight)))


# --- container facts ----------------------------------------------------------------------------------


def _container_facts(container: InputContainer) -> dict[str, Any]:
    streams = []
    video: dict[str, Any] = {}
    for stream in container.streams:
        info: dict[str, Any] = {
            "index": stream.index,
            "type": stream.type,
            "codec": stream.codec_context.name if stream.codec_context else None,
            "duration_s": _round(_stream_duration(stream, container, container_fallback=False)),
            "frames": stream.frames or None,
            "metadata": _clean_metadata(stream.metadata),
        }
        if stream.type == "video" and isinstance(stream, VideoStream):
            ctx = stream.codec_context
            info.update(
                width=ctx.width,
                height=ctx.height,
                pix_fmt=ctx.pix_fmt,
                profile=stream.profile,
                fps=_round(_fps(stream)),
                average_rate=_ratio(stream.average_rate),
                base_rate=_ratio(stream.base_rate),
            )
            if not video:
                video = info
        elif stream.type == "audio":
            audio_ctx = stream.codec_context
            info.update(
                sample_rate=getattr(audio_ctx, "sample_rate", None),
                channels=getattr(audio_ctx, "channels", None),
            )
        streams.append(info)
    duration = container.duration / av.time_base if container.duration else None
    return {
        "format": container.format.name,
        "duration_s": _round(duration),
        "bit_rate": container.bit_rate or None,
        "metadata": _clean_metadata(container.metadata),
        "streams": streams,
        "video": video,
    }


def _container_reasons(
    container: InputContainer, stream: VideoStream, facts: dict[str, Any], path: Path
) -> tuple[list[Reason], list[str]]:
    """Facts worth a sentence: encoder tags (INFO) and container oddities (EDITED or INFO)."""
    reasons: list[Reason] = []
    anomalies: list[str] = []
    encoders = sorted(
        {
            value
            for meta in [facts["metadata"], *(s["metadata"] for s in facts["streams"])]
            for key, value in meta.items()
            if key.lower() in {"encoder", "encoded_by", "software"}
        }
    )
    if encoders:
        facts["encoders"] = encoders
        # "Lavf" / "Lavc" mean FFmpeg wrote the file: true of most uploads and of most edits, so a fact only.
        reasons.append(Reason("video_encoder", f"Written by {', '.join(encoders)}."))

    variable = _variable_frame_rate(stream)
    facts["video"]["variable_frame_rate"] = variable
    if variable:
        anomalies.append("variable_frame_rate")
        # Phones record VFR routinely, so this stays INFO.
        reasons.append(Reason("video_variable_frame_rate", "The video has a variable frame rate."))

    durations = {
        s["type"]: s["duration_s"] for s in facts["streams"] if s["duration_s"] and s["type"] in {"video", "audio"}
    }
    if "video" in durations and "audio" in durations:
        gap = abs(durations["video"] - durations["audio"])
        if gap > max(1.0, 0.1 * max(durations.values())):
            anomalies.append("stream_duration_mismatch")
            reasons.append(
                Reason(
                    "video_stream_duration_mismatch",
                    f"The video and audio tracks differ in length by {gap:.1f}s: one was trimmed, "
                    "extended or replaced.",
                    Category.EDITED,
                )
            )

    if container.format.name.startswith("mov"):
        edits = mp4_edit_lists(path)
        if edits:
            facts["edit_lists"] = edits
        for track in edits:
            segments = [e for e in track["entries"] if e["media_time"] != -1]
            if len(segments) > 1 or any(e["rate"] != 1.0 for e in segments):
                anomalies.append("edit_list")
                reasons.append(
                    Reason(
                        "video_edit_list",
                        f"The {track['handler']} track plays {len(segments)} segments through an edit list: "
                        "cut or re-timed without re-encoding.",
                        Category.EDITED,
                    )
                )
                break
    return reasons, anomalies


def _variable_frame_rate(stream: VideoStream) -> bool:
    """True when the demuxer's index shows uneven frame spacing (no decoding needed)."""
    try:
        entries = stream.index_entries
        stamps = np.fromiter((e.timestamp for e in entries), dtype=np.int64, count=min(len(entries), 50_000))
    except (AttributeError, TypeError):
        stamps = np.empty(0, dtype=np.int64)
    if stamps.size >= 10:
        deltas = np.diff(np.sort(stamps)).astype(float)
        deltas = deltas[deltas > 0]
        if deltas.size >= 5:
            median = float(np.median(deltas))
            uneven = float(np.mean(np.abs(deltas - median) > 0.05 * median))
            return uneven > 0.1
    average, base = stream.average_rate, stream.base_rate
    if average and base:
        return abs(float(average) - float(base)) > 0.01 * float(base)
    return False


_MP4_PARENTS = {b"moov", b"trak", b"edts", b"mdia"}


def mp4_edit_lists(path: Path, *, max_moov_bytes: int = 64 << 20) -> list[dict[str, Any]]:
    """Edit lists (`elst`) per track of an MP4/MOV, read from the `moov` box without decoding.

    PyAV/FFmpeg apply edit lists silently, so this is the only way to see that a file was trimmed in place.
    Returns [] for files without a readable `moov` (fragmented MP4, damaged files, huge headers).
    """
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            position = 0
            while position + 8 <= size:
                handle.seek(position)
                box_size, box_type, header = _box_header(handle, size - position)
                if box_size < header:
                    return []
                if box_type == b"moov":
                    if box_size > max_moov_bytes:
                        return []
                    return _parse_tracks(handle.read(box_size - header))
                position += box_size
    except (OSError, struct.error):
        return []
    return []


def _box_header(handle: Any, remaining: int) -> tuple[int, bytes, int]:
    raw = handle.read(8)
    if len(raw) < 8:
        return 0, b"", 8
    box_size, box_type = struct.unpack(">I4s", raw)
    if box_size == 1:
        return struct.unpack(">Q", handle.read(8))[0], box_type, 16
    if box_size == 0:  # "extends to end of file"
        return remaining, box_type, 8
    return box_size, box_type, 8


def _iter_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    offset = 0
    while offset + 8 <= len(data):
        box_size, box_type = struct.unpack_from(">I4s", data, offset)
        header = 8
        if box_size == 1 and offset + 16 <= len(data):
            box_size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif box_size == 0:
            box_size = len(data) - offset
        if box_size < header or offset + box_size > len(data):
            return
        yield box_type, data[offset + header : offset + box_size]
        offset += box_size


def _parse_tracks(moov: bytes) -> list[dict[str, Any]]:
    tracks = []
    for box_type, trak in _iter_boxes(moov):
        if box_type != b"trak":
            continue
        handler, entries = "unknown", []
        for child_type, child in _iter_boxes(trak):
            if child_type == b"mdia":
                for grand_type, grand in _iter_boxes(child):
                    if grand_type == b"hdlr" and len(grand) >= 12:
                        handler = {"vide": "video", "soun": "audio"}.get(
                            grand[8:12].decode("latin-1"), grand[8:12].decode("latin-1")
                        )
            elif child_type == b"edts":
                for grand_type, grand in _iter_boxes(child):
                    if grand_type == b"elst":
                        entries = _parse_elst(grand)
        if entries:
            tracks.append({"handler": handler, "entries": entries})
    return tracks


def _parse_elst(box: bytes) -> list[dict[str, Any]]:
    if len(box) < 8:
        return []
    version = box[0]
    (count,) = struct.unpack_from(">I", box, 4)
    layout, width = (">QqhH", 20) if version == 1 else (">IihH", 12)
    entries = []
    for i in range(min(count, 100)):  # a real file has one or two; a hostile one must not cost us
        offset = 8 + i * width
        if offset + width > len(box):
            break
        duration, media_time, rate_int, rate_frac = struct.unpack_from(layout, box, offset)
        entries.append({"duration": duration, "media_time": media_time, "rate": rate_int + rate_frac / 65536})
    return entries


# --- small helpers ------------------------------------------------------------------------------------


def _decode_tolerantly(container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]:
    """Decoded frames, skipping packets the decoder rejects (one bad packet should not lose the video)."""
    errors = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            errors += 1
            if errors > 50:
                raise
            continue
        for frame in frames:
            if isinstance(frame, VideoFrame):
                yield frame


def _frame_media(sample: _Sample) -> MediaInput:
    data = sample.path.read_bytes()
    return MediaInput(
        path=sample.path,
        kind="image",
        mime="image/png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=sample.path.name,
    )


def _run_one(detector: Detector, media: MediaInput, context: DetectorContext) -> DetectorOutput:
    """Like the pipeline does for whole files: a failing frame detector becomes an error, not a crash."""
    try:
        refusal = detector.applies(media)
        if refusal is not None:
            return refusal
        return detector.run(media, context)
    except Exception as exc:
        logger.warning("frame detector %s failed on %s: %s", detector.name, media.filename, exc)
        return DetectorOutput(status="error", evidence={"error": _short(exc)})


def _face_count(evidence: dict[str, Any]) -> int | None:
    value = evidence.get("face_count")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    faces = evidence.get("faces")
    if isinstance(faces, list):
        return len(faces)
    return None


def _fps(stream: VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def _frame_count(stream: VideoStream, container: InputContainer, fps: float | None) -> int | None:
    if stream.frames:
        return int(stream.frames)
    duration = _stream_duration(stream, container)
    if duration and fps:
        return max(1, round(duration * fps))
    return None


def _stream_duration(stream: Any, container: InputContainer, *, container_fallback: bool = True) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container_fallback and container.duration:
        return container.duration / av.time_base
    return None


def _keyframe_times(stream: VideoStream) -> list[float]:
    try:
        entries = stream.index_entries
        time_base = stream.time_base or Fraction(1, 1000)
        start = stream.start_time or 0
        return [float((e.timestamp - start) * time_base) for e in entries if e.is_keyframe][:100_000]
    except (AttributeError, TypeError):
        return []


def _evenly_spaced(values: Sequence[Any], count: int) -> list[Any]:
    if len(values) <= count:
        return list(values)
    positions = np.linspace(0, len(values) - 1, count).round().astype(int)
    return [values[i] for i in sorted(set(positions.tolist()))]


def _clean_metadata(metadata: dict[str, str]) -> dict[str, str]:
    return {str(k)[:64]: str(v)[:256] for k, v in list(metadata.items())[:50]}


def _ratio(value: Fraction | None) -> str | None:
    return f"{value.numerator}/{value.denominator}" if value else None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _top(scores: dict[str, float]) -> str | None:
    return max(scores, key=lambda name: scores[name]) if scores else None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
