"""Audio: container facts, spectral flatness, band-limit and splice evidence.

The signal is decoded to mono float32 (the first `max_seconds` only) and examined three ways:

* **Band limit.** The long-term average spectrum shows how far up the recording really reaches. A 44.1 kHz
  file with nothing above 4 kHz was upsampled from a phone call, a low-rate recording or a TTS engine: the
  file was processed (EDITED), which is worth showing but is not evidence of deception.
* **Splices.** Two recordings joined end to end rarely share a noise floor, a DC offset or a room. We track
  the floor (a low percentile of frame energy) and the DC offset over half-second blocks and look for a step
  between two *stable* stretches; speech onsets move the floor too, but the stretch that contains speech is
  not stable, so it does not qualify. Sample-level clicks (a cut away from a zero crossing) and stretches of
  exact digital silence inside a noisy recording corroborate.
* **Spectral flatness** over time is reported as a fact (tonal vs noise-like content) for reviewers.

The probability stays low (0.15) on ordinary recordings so the trust score is not dragged around by a
detector that found nothing; splice evidence raises it, band-limiting alone keeps it below neutral.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from scipy import ndimage, signal

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float32]

BASE_P = 0.15  # nothing found: mild evidence of an ordinary recording
BAND_LIMITED_P = 0.3  # processed but not manipulated: still below neutral
_BIT_DEPTHS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}


class _Unreadable(Exception):
    pass


@dataclass
class _Decoded:
    samples: FloatArray  # mono float32, capped
    sample_rate: int
    facts: dict[str, Any]


class AudioDetector(Detector):
    """Container facts and signal evidence (band limit, splices, flatness) for audio files."""

    name = "audio"
    version = "1.0"
    kinds = frozenset({"audio"})
    time_budget_s = 30.0

    def __init__(self, *, max_seconds: float = 600.0) -> None:
        self.max_seconds = max_seconds

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        started = time.monotonic()
        if media.path.stat().st_size == 0:
            return DetectorOutput.abstain(AbstainCode.NO_SAMPLES, "The audio file is empty.")
        try:
            decoded = self._decode(media.path)
        except _Unreadable as exc:
            return DetectorOutput.abstain(
                AbstainCode.UNREADABLE, "The audio file could not be decoded.", error=str(exc)[:300]
            )
        if decoded.samples.size == 0:
            return DetectorOutput.abstain(
                AbstainCode.NO_SAMPLES, "The audio file holds no samples.", container=decoded.facts
            )
        x, rate = decoded.samples, decoded.sample_rate
        if not np.any(x):
            return DetectorOutput.abstain(
                AbstainCode.LOW_QUALITY, "The recording is digital silence throughout.", container=decoded.facts
            )
        nperseg = _frame_length(rate)
        if x.size < 4 * nperseg:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL,
                f"The recording is too short to analyse ({x.size / rate:.2f}s).",
                container=decoded.facts,
            )
        metadata_problem = ogg_comment_problem(media.path)
        if metadata_problem:
            decoded.facts["metadata_problem"] = metadata_problem
        features = _frame_features(x, rate, nperseg)
        bandwidth = effective_bandwidth(features["ltas"], features["freqs"])
        splices = find_splices(features, rate, nperseg // 2)
        clicks = find_clicks(x, rate)
        gaps = find_digital_silence_gaps(x, rate)
        return self._judge(decoded, features, bandwidth, splices, clicks, gaps, started)

    # --- decoding -------------------------------------------------------------------------------------

    def _decode(self, path: Path) -> _Decoded:
        """soundfile for what libsndfile reads (WAV, FLAC, OGG, MP3), PyAV for the rest (M4A, ...)."""
        try:
            return self._decode_soundfile(path)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as first:
            try:
                return self._decode_pyav(path)
            except (av.error.FFmpegError, AttributeError, ValueError, IndexError, _Unreadable) as second:
                raise _Unreadable(f"soundfile: {first}; pyav: {second}") from second

    def _decode_soundfile(self, path: Path) -> _Decoded:
        info = sf.info(str(path))
        if info.samplerate <= 0 or info.channels <= 0:
            raise ValueError("no sample rate or channels")
        cap = int(self.max_seconds * info.samplerate)
        data, rate = sf.read(
            str(path), frames=min(info.frames, cap) if info.frames > 0 else cap, dtype="float32", always_2d=True
        )
        facts = {
            "reader": "soundfile",
            "format": info.format,
            "codec": info.subtype,
            "sample_rate": int(rate),
            "channels": info.channels,
            "duration_s": round(info.frames / info.samplerate, 3),
            "bit_depth": _BIT_DEPTHS.get(info.subtype),
        }
        return _Decoded(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate), facts)

    def _decode_pyav(self, path: Path) -> _Decoded:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.audio:
                raise _Unreadable("no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate
            if not rate:
                raise _Unreadable("no sample rate")
            facts = {
                "reader": "pyav",
                "format": container.format.name,
                "codec": stream.codec_context.name,
                "sample_rate": int(rate),
                "channels": stream.codec_context.channels,
                "duration_s": round(container.duration / av.time_base, 3) if container.duration else None,
                "bit_depth": None,  # lossy codecs decode to float: there is no stored bit depth to report
                "bit_rate": container.bit_rate or None,
            }
            # Downmix and convert to packed float at the native rate; resampling would blur the band limit.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            cap = int(self.max_seconds * rate)
            chunks: list[FloatArray] = []
            total = 0
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    chunk = converted.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    chunks.append(chunk)
                    total += chunk.size
                if total >= cap:
                    break
        samples = np.concatenate(chunks)[:cap] if chunks else np.empty(0, np.float32)
        return _Decoded(samples, int(rate), facts)

    # --- verdict --------------------------------------------------------------------------------------

    def _judge(
        self,
        decoded: _Decoded,
        features: dict[str, Any],
        bandwidth: float,
        splices: list[dict[str, Any]],
        clicks: list[float],
        gaps: list[dict[str, float]],
        started: float,
    ) -> DetectorOutput:
        rate = decoded.sample_rate
        nyquist = rate / 2
        reasons: list[Reason] = []
        probability = BASE_P

        band_limited = nyquist >= 8000 and bandwidth < 0.5 * nyquist
        if band_limited:
            probability = max(probability, BAND_LIMITED_P)
            lossy = decoded.facts.get("bit_depth") is None
            cause = (
                "a low-bitrate lossy encode, an upsampled phone call or low-rate recording, or speech synthesis"
                if lossy
                else "likely upsampled from a phone call, a low-rate recording or speech synthesis"
            )
            reasons.append(
                Reason(
                    "audio_band_limited",
                    f"Nothing above {bandwidth / 1000:.1f} kHz although the file is sampled at {rate / 1000:g} "
                    f"kHz: {cause}.",
                    Category.EDITED,
                )
            )
        # Clicks alone are common (mic pops, vinyl); they count only next to a noise-floor step, and a
        # recording full of them is simply crackly.
        corroborated = [s for s in splices if any(abs(c - s["t"]) < 0.6 for c in clicks)] if len(clicks) < 20 else []
        if splices:
            strength = max(s["strength"] for s in splices)
            probability = max(probability, min(0.9, 0.55 + 0.3 * strength + 0.05 * len(corroborated)))
            times = ", ".join(f"{s['t']:.1f}s" for s in splices[:5])
            reasons.append(
                Reason(
                    "audio_splice",
                    f"The background noise or DC offset changes abruptly at {times}: recordings may have been joined.",
                    Category.MANIPULATED,
                )
            )
        if gaps:
            probability = max(probability, min(0.8, 0.5 + 0.1 * len(gaps)))
            reasons.append(
                Reason(
                    "audio_digital_silence",
                    f"{len(gaps)} stretch(es) of exact digital silence inside an otherwise noisy recording: "
                    "audio was cut out or inserted.",
                    Category.MANIPULATED,
                )
            )
        if decoded.facts.get("metadata_problem"):
            # The sound decodes, so it is still judged: refusing would let anyone dodge the analysis by
            # breaking a tag. The broken header itself says a non-standard tool wrote or altered the file.
            reasons.append(
                Reason(
                    "audio_malformed_metadata",
                    f"The file's metadata header is malformed ({decoded.facts['metadata_problem']}); "
                    "its tags were ignored.",
                    Category.EDITED,
                )
            )
        if not reasons:
            reasons.append(Reason("audio_no_findings", "No band limit, splice or silence anomaly was found."))

        flatness = features["flatness"]
        evidence = {
            "container": decoded.facts,
            "analysed_s": round(decoded.samples.size / rate, 3),
            "effective_bandwidth_hz": round(bandwidth, 1),
            "nyquist_hz": nyquist,
            "band_limited": band_limited,
            "spectral_flatness": {
                "median": _r(np.median(flatness)),
                "p10": _r(np.percentile(flatness, 10)),
                "p90": _r(np.percentile(flatness, 90)),
            },
            "noise_floor_db": _r(np.median(features["floor_db"])),
            "splices": splices[:20],
            "clicks": [round(c, 3) for c in clicks[:50]],
            "click_count": len(clicks),
            "digital_silence_gaps": gaps[:20],
            "timings_s": {"total": round(time.monotonic() - started, 3)},
        }
        return DetectorOutput(status="ok", probability=round(probability, 4), reasons=reasons, evidence=evidence)


# --- signal features ----------------------------------------------------------------------------------


def _frame_length(rate: int) -> int:
    """About 40 ms, as a power of two: short enough to localise a splice, long enough for a spectrum."""
    return int(2 ** max(8, round(np.log2(rate * 0.04))))


def _frame_features(x: FloatArray, rate: int, nperseg: int) -> dict[str, Any]:
    """Per-frame energy, flatness and centroid plus the long-term average spectrum, computed in chunks
    so ten minutes of 48 kHz audio never becomes one 200 MB spectrogram."""
    hop = nperseg // 2
    chunk_frames = 2048
    energy, flatness, centroid, dc = [], [], [], []
    ltas = np.zeros(nperseg // 2 + 1, dtype=np.float64)
    freqs = np.fft.rfftfreq(nperseg, 1 / rate)
    total_frames = 1 + (x.size - nperseg) // hop
    for first in range(0, total_frames, chunk_frames):
        count = min(chunk_frames, total_frames - first)
        segment = x[first * hop : first * hop + (count - 1) * hop + nperseg]
        # boundary=None/padded=False: frames tile the chunks exactly, with no zero padding at chunk edges
        # that would look like a discontinuity.
        _, _, spec = signal.stft(
            segment,
            fs=rate,
            window="hann",
            nperseg=nperseg,
            noverlap=nperseg - hop,
            boundary=None,
            padded=False,
            detrend=False,
        )
        power = (np.abs(spec) ** 2).astype(np.float64) + 1e-20
        mean_power = power.mean(axis=0)
        energy.append(10 * np.log10(mean_power))
        flatness.append(np.exp(np.log(power).mean(axis=0)) / mean_power)
        centroid.append((freqs[:, None] * power).sum(axis=0) / power.sum(axis=0))
        frames = np.lib.stride_tricks.sliding_window_view(segment, nperseg)[::hop][: power.shape[1]]
        dc.append(frames.mean(axis=1))
        ltas += power.sum(axis=1)
    energy_db = np.concatenate(energy)
    return {
        "energy_db": energy_db,
        "flatness": np.concatenate(flatness),
        "centroid": np.concatenate(centroid),
        "dc": np.concatenate(dc),
        "floor_db": _block_floor(energy_db, rate, hop),
        "ltas": ltas / max(1, total_frames),
        "freqs": freqs,
    }


def _block_floor(energy_db: NDArray[np.float64], rate: int, hop: int) -> NDArray[np.float64]:
    block = max(1, round(0.5 * rate / hop))
    usable = energy_db[: energy_db.size // block * block]
    if usable.size == 0:
        return np.asarray([float(np.percentile(energy_db, 10))])
    return np.percentile(usable.reshape(-1, block), 10, axis=1)


def effective_bandwidth(ltas: NDArray[np.float64], freqs: NDArray[np.float64], drop_db: float = 60.0) -> float:
    """The highest frequency whose long-term level is within `drop_db` of the spectrum's peak."""
    level = 10 * np.log10(ltas + 1e-30)
    # A few bins of smoothing so a single tonal spike or a null does not move the edge.
    level = ndimage.uniform_filter1d(level, size=5)
    above = np.nonzero(level > level.max() - drop_db)[0]
    return float(freqs[above[-1]]) if above.size else 0.0


def find_splices(features: dict[str, Any], rate: int, hop: int) -> list[dict[str, Any]]:
    """Steps in the noise floor or DC offset between two stable half-second-block stretches."""
    floor = features["floor_db"]
    block_frames = max(1, round(0.5 * rate / hop))
    dc_frames = features["dc"][: floor.size * block_frames]
    dc_blocks = (
        dc_frames.reshape(-1, block_frames).mean(axis=1) if dc_frames.size == floor.size * block_frames else None
    )
    side = 4  # two seconds each side
    candidates: list[dict[str, Any]] = []
    for b in range(side, floor.size - side + 1):
        left, right = floor[b - side : b], floor[b : b + side]
        spread = _mad(left) + _mad(right)
        step = abs(float(np.median(right) - np.median(left)))
        floor_score = step / (spread + 1.0)
        dc_step, dc_score = 0.0, 0.0
        if dc_blocks is not None:
            dl, dr = dc_blocks[b - side : b], dc_blocks[b : b + side]
            dc_step = abs(float(np.median(dr) - np.median(dl)))
            dc_score = dc_step / (float(_mad(dl) + _mad(dr)) + 1e-3)
        if (step >= 8.0 and floor_score >= 3.0) or (dc_step >= 0.01 and dc_score >= 5.0):
            score = max(floor_score / 10.0, dc_score / 20.0)
            # Medians tie over a block either side of a clean step; the mean step peaks exactly on it.
            mean_step = abs(float(right.mean() - left.mean()))
            candidates.append(
                {
                    "_rank": (round(min(score, 1.0), 1), mean_step),
                    "t": round(b * block_frames * hop / rate, 2),
                    "floor_step_db": round(step, 1),
                    "dc_step": round(dc_step, 4),
                    "strength": round(min(1.0, score), 2),
                }
            )
    # Neighbouring blocks see the same step: keep the best within each two-second window.
    kept: list[dict[str, Any]] = []
    for candidate in sorted(candidates, key=lambda c: c["_rank"], reverse=True):
        if all(abs(candidate["t"] - k["t"]) > side * 0.5 for k in kept):
            kept.append(candidate)
    for candidate in kept:
        del candidate["_rank"]
    return sorted(kept, key=lambda c: c["t"])


def find_clicks(x: FloatArray, rate: int) -> list[float]:
    """Times of single-sample jumps far above the local slope (a cut away from a zero crossing)."""
    step = np.abs(np.diff(x))
    local = ndimage.uniform_filter1d(step, size=max(3, int(0.01 * rate))) + 1e-4
    hits = np.nonzero((step > 8 * local) & (step > 0.05))[0]
    times: list[float] = []
    for hit in hits:
        t = hit / rate
        if not times or t - times[-1] > 0.05:
            times.append(t)
        if len(times) > 200:
            break
    return times


def find_digital_silence_gaps(x: FloatArray, rate: int) -> list[dict[str, float]]:
    """Runs of exact zeros (≥ 10 ms) inside a recording whose surroundings are not digitally clean."""
    zero = x == 0
    if not zero.any():
        return []
    edges = np.diff(np.concatenate(([0], zero.view(np.int8), [0])))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    min_run, margin = int(0.01 * rate), int(0.25 * rate)
    gaps = []
    for start, end in zip(starts, ends, strict=True):
        if end - start < min_run or start < margin or end > x.size - margin:
            continue  # leading/trailing silence is how encoders and editors pad; not a splice
        around = np.concatenate((x[start - margin : start], x[end : end + margin]))
        # Real rooms and microphones never produce exact zeros: if the surroundings are noisy, the
        # silence was pasted in. A synthetic or gated source (all clean) is left alone.
        if np.mean(around == 0) < 0.01 and np.sqrt(np.mean(around**2)) > 1e-4:
            gaps.append({"t": round(float(start) / rate, 3), "duration_s": round(float(end - start) / rate, 3)})
        if len(gaps) >= 50:
            break
    return gaps


def ogg_comment_problem(path: Path, *, window: int = 1 << 16) -> str | None:
    """Why an Ogg file's Vorbis/Opus comment header cannot be right, or None.

    Decoders skip a bad comment header silently; tag readers choke on it. Declared lengths are checked
    against the bytes that follow in the first 64 KiB (comment headers sit at the very start).
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(window)
    except OSError:
        return None
    if not head.startswith(b"OggS"):
        return None
    for magic in (b"\x03vorbis", b"OpusTags"):
        at = head.find(magic)
        if at < 0:
            continue
        offset = at + len(magic)
        available = len(head) if len(head) < window else float("inf")
        try:
            vendor_length = int.from_bytes(head[offset : offset + 4], "little")
            offset += 4 + vendor_length
            if offset + 4 > available:
                return f"vendor string of {vendor_length} bytes runs past the header"
            count = int.from_bytes(head[offset : offset + 4], "little")
            offset += 4
            for index in range(min(count, 10_000)):
                length = int.from_bytes(head[offset : offset + 4], "little")
                offset += 4 + length
                if offset > available or length > window:
                    return f"comment {index + 1} declares {length} bytes, more than the file holds"
                comment = head[offset - length : offset]
                # The spec requires UTF-8 "FIELD=value"; binary bytes here mean the header was overwritten.
                if len(comment) == length and (b"=" not in comment or not _is_utf8(comment)):
                    return f"comment {index + 1} is not a FIELD=value text"
        except (IndexError, ValueError):
            return "comment header is truncated"
        return None
    return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mad(values: NDArray[Any]) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def _r(value: Any) -> float:
    return round(float(value), 4)
