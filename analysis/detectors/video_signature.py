"""Video signatures and matching: a frame-level PDQ sequence (docs/analysis.md, "Known videos").

The `vpdq` package (Meta's video PDQ) does not build here (it needs the FFmpeg development libraries), so Hlekkr
computes the same kind of signature itself: one PDQ hash per second of video (the first frame decoded at or after
each whole second), each with PDQ's quality. `import_hashes` also reads vPDQ's own output files
(`frame_number,quality,pdq_hex,timestamp` lines), so signatures made with Meta's tools can be banked as they are.

Matching rule (one query video against every banked video):

1. Frame pairs: a query frame and a banked frame match when both have quality >= `min_quality` (50) and their
   Hamming distance is <= `max_distance` (31, PDQ's recommendation for photos; a re-encoded or resized frame moves
   a few bits, an unrelated frame about 128).
2. Time consistency: each pair votes for an offset (banked time - query time, rounded to the second); the offset
   with most distinct query frames (+-1 s) wins. This is what makes a trimmed copy match (a constant offset) and
   keeps scattered chance pairs (a black frame, a title card) from adding up.
3. A banked video matches when at least `min_frames` (3) query frames agree on that offset and they cover at least
   half of the query's usable frames or half of the banked video's: a trimmed or cut-down copy covers its own
   length; a known fake spliced into a longer video covers the banked clip.
4. The offending segment is reported in query time (`query_start`..`query_end`, seconds, the span of agreeing
   frames plus one sampling step) and in the banked video's time.

Speed: all banked frames are one (N, 4) uint64 array; a query frame is compared with all of them at once (XOR and
numpy's popcount). `bench/video_match.py` measures a 30-frame query against 10,000 banked videos.
Not handled: speed changes, mirrored or rotated video, picture-in-picture (documented as such).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SIGNATURE_FORMAT = "hlekkr-frame-pdq/1"
SAMPLE_EVERY_S = 1.0
MAX_FRAMES = 3600  # an hour at one frame per second
THUMBNAIL_SIDE = 256  # PDQ filters to 64x64 anyway


def frame_pdq(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ of one RGB frame in the reference hex form (bit 0 most significant, as known_content's bits_to_hex).
    Done here rather than through known_content so that importing this module loads no OpenCV."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


@dataclass(frozen=True)
class FrameHash:
    t: float  # seconds from the start
    hash_hex: str
    quality: int


def compute_signature(
    path: str | Path, *, every_s: float = SAMPLE_EVERY_S, max_frames: int = MAX_FRAMES
) -> list[FrameHash]:
    """One PDQ hash per `every_s` seconds of the first video stream (empty when there is none)."""
    import av

    frames: list[FrameHash] = []
    with av.open(str(path)) as container:
        streams = container.streams.video
        if not streams:
            return frames
        stream = streams[0]
        stream.thread_type = "AUTO"
        next_t = 0.0
        for frame in container.decode(stream):
            if frame.pts is None or frame.time_base is None:
                continue
            t = float(frame.pts * frame.time_base)
            if t + 1e-6 < next_t:
                continue
            scale = min(1.0, THUMBNAIL_SIDE / max(frame.width, frame.height))
            image = frame.reformat(
                width=max(1, int(frame.width * scale)), height=max(1, int(frame.height * scale)), format="rgb24"
            ).to_ndarray()
            hash_hex, quality = frame_pdq(image)
            frames.append(FrameHash(round(t, 3), hash_hex, quality))
            next_t = (int(t / every_s) + 1) * every_s
            if len(frames) >= max_frames:
                break
    return frames


# --- signature files ----------------------------------------------------------------------------------------------
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SignatureFileError(ValueError):
    pass


def signature_document(
    frames: Sequence[FrameHash], *, label: str = "", duration: float | None = None
) -> dict[str, Any]:
    return {
        "format": SIGNATURE_FORMAT,
        "every_s": SAMPLE_EVERY_S,
        "label": label,
        "duration": duration if duration is not None else (frames[-1].t if frames else 0.0),
        "frames": [[f.t, f.hash_hex, f.quality] for f in frames],
    }


def read_signature_file(path: Path) -> tuple[list[FrameHash], str]:
    """Our JSON signature, or vPDQ's text output (`frame_number,quality,pdq_hex,timestamp` per line)."""
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SignatureFileError(f"not valid JSON ({exc})") from None
        if document.get("format") != SIGNATURE_FORMAT:
            raise SignatureFileError(f"unknown signature format {document.get('format')!r}")
        rows = document.get("frames") or []
        frames = [_frame(i + 1, row[0], row[1], row[2]) for i, row in enumerate(rows)]
        return frames, str(document.get("label") or "")[:200]
    frames = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in line.split(",")]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(parts) != 4:
            raise SignatureFileError(f"line {number}: expected frame_number,quality,pdq_hex,timestamp")
        frames.append(_frame(number, parts[3], parts[2], parts[1]))
    return frames, ""


def _frame(number: int, t: Any, hash_hex: Any, quality: Any) -> FrameHash:
    value = str(hash_hex).strip().lower()
    if not _HEX64.match(value):
        raise SignatureFileError(f"frame {number}: the hash must be 64 hexadecimal characters")
    try:
        seconds, q = float(t), int(float(quality))
    except (TypeError, ValueError):
        raise SignatureFileError(f"frame {number}: time and quality must be numbers") from None
    if not 0 <= q <= 100 or seconds < 0:
        raise SignatureFileError(f"frame {number}: quality 0..100 and a time >= 0")
    return FrameHash(seconds, value, q)


# --- matching -------------------------------------------------------------------------------------------------------
def _words(hashes: Sequence[str]) -> np.ndarray:
    """(n, 4) uint64 words of 256-bit hex hashes, in one conversion."""
    if not hashes:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8").astype(np.uint64).reshape(len(hashes), 4)


QUERY_CHUNK = 8  # query frames compared at once: (8, N, 4) words, ~80 MB for a 10,000-video bank


@dataclass(frozen=True)
class BankedVideoEntry:
    video_id: int
    bank: str
    bank_kind: str  # known_fake | known_authentic
    label: str
    frames: Sequence[FrameHash]


@dataclass(frozen=True)
class VideoMatch:
    video_id: int
    bank: str
    bank_kind: str
    label: str
    query_start: float
    query_end: float
    bank_start: float
    bank_end: float
    matched_frames: int
    query_coverage: float
    bank_coverage: float
    mean_distance: float

    def as_evidence(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "bank": self.bank,
            "bank_kind": self.bank_kind,
            "label": self.label,
            "segment": {"start_s": self.query_start, "end_s": self.query_end},
            "banked_segment": {"start_s": self.bank_start, "end_s": self.bank_end},
            "matched_frames": self.matched_frames,
            "query_coverage": self.query_coverage,
            "bank_coverage": self.bank_coverage,
            "mean_distance": self.mean_distance,
        }


@dataclass
class VideoIndex:
    """Every usable banked frame as one array, for matching a query against all banked videos at once."""

    entries: dict[int, BankedVideoEntry] = field(default_factory=dict)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.uint64))
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    usable: dict[int, int] = field(default_factory=dict)  # video id -> usable frame count

    @classmethod
    def build(cls, videos: Iterable[BankedVideoEntry], *, min_quality: int = 50) -> VideoIndex:
        index = cls()
        hashes: list[str] = []
        owner: list[int] = []
        times: list[float] = []
        for video in videos:
            index.entries[video.video_id] = video
            good = [f for f in video.frames if f.quality >= min_quality]
            index.usable[video.video_id] = len(good)
            hashes.extend(f.hash_hex for f in good)
            owner.extend([video.video_id] * len(good))
            times.extend(f.t for f in good)
        if hashes:
            index.hashes = _words(hashes)
            index.owner = np.array(owner, dtype=np.int64)
            index.times = np.array(times, dtype=np.float64)
        return index

    def __len__(self) -> int:
        return len(self.entries)

    def match(
        self,
        query: Sequence[FrameHash],
        *,
        max_distance: int = 31,
        min_quality: int = 50,
        min_frames: int = 3,
        min_coverage: float = 0.5,
        step_s: float = SAMPLE_EVERY_S,
    ) -> list[VideoMatch]:
        good = [f for f in query if f.quality >= min_quality]
        if not good or not len(self.hashes):
            return []
        # video id -> [(query index, banked time, distance)]
        pairs: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
        query_words = _words([f.hash_hex for f in good])
        for start in range(0, len(good), QUERY_CHUNK):
            block = query_words[start : start + QUERY_CHUNK]
            distances = np.bitwise_count(self.hashes[None, :, :] ^ block[:, None, :]).sum(axis=2, dtype=np.uint16)
            for qi, row in zip(*np.nonzero(distances <= max_distance), strict=True):
                pairs[int(self.owner[row])].append((start + int(qi), float(self.times[row]), int(distances[qi, row])))
        matches: list[VideoMatch] = []
        for video_id, found in pairs.items():
            votes: dict[int, set[int]] = defaultdict(set)
            for qi, bank_t, _ in found:
                votes[round(bank_t - good[qi].t)].add(qi)
            best = max(votes, key=lambda o: len(votes[o] | votes.get(o - 1, set()) | votes.get(o + 1, set())))
            agreeing = [(qi, bt, d) for qi, bt, d in found if abs(round(bt - good[qi].t) - best) <= 1]
            query_frames = sorted({qi for qi, _, _ in agreeing})
            bank_times = sorted({bt for _, bt, _ in agreeing})
            if len(query_frames) < min_frames:
                continue
            query_coverage = len(query_frames) / len(good)
            bank_coverage = len(bank_times) / max(self.usable.get(video_id, 1), 1)
            if max(query_coverage, bank_coverage) < min_coverage:
                continue
            entry = self.entries[video_id]
            matches.append(
                VideoMatch(
                    video_id=video_id,
                    bank=entry.bank,
                    bank_kind=entry.bank_kind,
                    label=entry.label,
                    query_start=round(good[query_frames[0]].t, 2),
                    query_end=round(good[query_frames[-1]].t + step_s, 2),
                    bank_start=round(bank_times[0], 2),
                    bank_end=round(bank_times[-1] + step_s, 2),
                    matched_frames=len(query_frames),
                    query_coverage=round(min(query_coverage, 1.0), 3),
                    bank_coverage=round(min(bank_coverage, 1.0), 3),
                    mean_distance=round(sum(d for _, _, d in agreeing) / len(agreeing), 1),
                )
            )
        matches.sort(key=lambda m: (-m.matched_frames, m.mean_distance))
        return matches
