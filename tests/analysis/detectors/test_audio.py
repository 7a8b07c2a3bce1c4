"""AudioDetector on recordings the tests synthesise with numpy and soundfile (no database, no shared data)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from analysis.detectors.audio import AudioDetector
from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput

RATE = 44100


def recording(seconds: float, noise_db: float, *, pitch: float = 220.0, dc: float = 0.0, seed: int = 0) -> np.ndarray:
    """A voice-like signal: harmonics under a syllable-rate envelope (with pauses) over room noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = (1 + np.sin(2 * np.pi * 3 * t)) ** 2 / 8
    voice = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 20)) * 0.2 * envelope
    return (voice + rng.normal(0, 10 ** (noise_db / 20), t.size) + dc).astype(np.float32)


def analyse(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="audio", mime="audio/wav", size=path.stat().st_size, filename=path.name)
    return AudioDetector().run(media, DetectorContext())


def write(path: Path, samples: np.ndarray, subtype: str = "PCM_16", rate: int = RATE) -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def with_ogg_checksums(data: bytes) -> bytes:
    """Recompute every Ogg page CRC, so an edited header is still a valid stream (as a hex editor plus a
    careless tool would leave it)."""

    def crc(page: bytes) -> int:
        value = 0
        for byte in page:
            value ^= byte << 24
            for _ in range(8):
                value = ((value << 1) ^ 0x04C11DB7 if value & 0x80000000 else value << 1) & 0xFFFFFFFF
        return value

    out = bytearray(data)
    offset = 0
    while offset + 27 <= len(out) and out[offset : offset + 4] == b"OggS":
        segments = out[offset + 26]
        body = sum(out[offset + 27 : offset + 27 + segments])
        end = offset + 27 + segments + body
        out[offset + 22 : offset + 26] = b"\x00\x00\x00\x00"
        out[offset + 22 : offset + 26] = crc(bytes(out[offset:end])).to_bytes(4, "little")
        offset = end
    return bytes(out)


def codes(output: DetectorOutput) -> set[str]:
    return {reason.code for reason in output.reasons}


def test_it_reports_container_facts(tmp_path: Path) -> None:
    stereo = np.stack([recording(3, -50), recording(3, -50, seed=1)], axis=1)
    output = analyse(write(tmp_path / "clean.wav", stereo, "PCM_24"))

    container = output.evidence["container"]
    assert container == {
        "reader": "soundfile",
        "format": "WAV",
        "codec": "PCM_24",
        "sample_rate": RATE,
        "channels": 2,
        "duration_s": 3.0,
        "bit_depth": 24,
    }


def test_an_ordinary_recording_scores_low(tmp_path: Path) -> None:
    output = analyse(write(tmp_path / "clean.wav", recording(8, -50)))

    assert output.status == "ok"
    assert output.probability is not None and output.probability < 0.3
    assert codes(output) == {"audio_no_findings"}
    assert output.evidence["effective_bandwidth_hz"] > 20000
    assert 0 <= output.evidence["spectral_flatness"]["median"] <= 1


def test_it_notices_a_band_limited_upsampled_recording(tmp_path: Path) -> None:
    phone = signal.resample_poly(recording(8, -50), 8000, RATE)
    upsampled = signal.resample_poly(phone, RATE, 8000).astype(np.float32)

    output = analyse(write(tmp_path / "upsampled.wav", upsampled))

    assert output.evidence["band_limited"] is True
    assert output.evidence["effective_bandwidth_hz"] < 5000
    reason = next(r for r in output.reasons if r.code == "audio_band_limited")
    assert reason.category == Category.EDITED
    assert output.probability is not None and output.probability < 0.5  # processed is not manipulated


def test_it_finds_a_splice_between_recordings_with_different_noise_floors(tmp_path: Path) -> None:
    joined = np.concatenate([recording(4, -60, seed=1), recording(4, -35, pitch=180, seed=2)])

    output = analyse(write(tmp_path / "spliced.wav", joined))

    splices = output.evidence["splices"]
    assert len(splices) == 1 and splices[0]["t"] == pytest.approx(4.0, abs=0.6)
    assert any(r.code == "audio_splice" and r.category == Category.MANIPULATED for r in output.reasons)
    assert output.probability is not None and output.probability >= 0.7


def test_it_finds_a_splice_by_a_dc_offset_jump(tmp_path: Path) -> None:
    joined = np.concatenate([recording(4, -50, seed=1), recording(4, -50, dc=0.05, seed=2)])

    output = analyse(write(tmp_path / "dc.wav", joined))

    assert output.evidence["splices"] and output.evidence["splices"][0]["dc_step"] > 0.03


def test_it_finds_digital_silence_pasted_inside_a_noisy_recording(tmp_path: Path) -> None:
    samples = recording(6, -50)
    samples[3 * RATE : int(3.2 * RATE)] = 0

    output = analyse(write(tmp_path / "gap.wav", samples, "FLOAT"))

    assert output.evidence["digital_silence_gaps"] == [{"t": 3.0, "duration_s": 0.2}]
    assert "audio_digital_silence" in codes(output)


def test_leading_and_trailing_silence_is_not_a_gap(tmp_path: Path) -> None:
    samples = np.concatenate([np.zeros(RATE, np.float32), recording(4, -50), np.zeros(RATE, np.float32)])

    output = analyse(write(tmp_path / "padded.wav", samples, "FLOAT"))

    assert output.evidence["digital_silence_gaps"] == []


def test_it_reads_formats_soundfile_cannot_through_pyav(tmp_path: Path) -> None:
    path = tmp_path / "voice.m4a"
    samples = recording(3, -50)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=RATE)
        for i, start in enumerate(range(0, samples.size - 1024, 1024)):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = RATE, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    output = analyse(path)

    assert output.status == "ok"
    assert output.evidence["container"]["reader"] == "pyav"
    assert output.evidence["container"]["codec"] == "aac"
    assert output.evidence["analysed_s"] == pytest.approx(3.0, abs=0.1)


def test_it_caps_how_much_audio_it_decodes(tmp_path: Path) -> None:
    path = write(tmp_path / "long.wav", recording(6, -50))
    media = MediaInput(path=path, kind="audio", mime="audio/wav", size=path.stat().st_size)

    output = AudioDetector(max_seconds=2).run(media, DetectorContext())

    assert output.evidence["analysed_s"] == 2.0
    assert output.evidence["container"]["duration_s"] == 6.0


def test_it_abstains_on_an_empty_flac(tmp_path: Path) -> None:
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")

    output = analyse(path)

    assert output.status == "abstained" and output.abstain_code == AbstainCode.NO_SAMPLES


def test_it_abstains_on_a_wav_with_zero_samples(tmp_path: Path) -> None:
    output = analyse(write(tmp_path / "zero.wav", np.zeros(0, np.float32)))

    assert output.abstain_code == AbstainCode.NO_SAMPLES
    assert output.evidence["container"]["sample_rate"] == RATE


def test_it_abstains_on_a_flac_with_zero_samples(tmp_path: Path) -> None:
    output = analyse(write(tmp_path / "zero.flac", np.zeros(0, np.float32)))

    assert output.abstain_code == AbstainCode.NO_SAMPLES


def test_it_abstains_on_garbage_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))

    output = analyse(path)

    assert output.status == "abstained" and output.abstain_code == AbstainCode.UNREADABLE


def test_it_abstains_on_a_truncated_wav_header(tmp_path: Path) -> None:
    full = write(tmp_path / "full.wav", recording(1, -50)).read_bytes()
    path = tmp_path / "truncated.wav"
    path.write_bytes(full[:20])

    output = analyse(path)

    assert output.abstain_code == AbstainCode.UNREADABLE


def test_it_abstains_on_digital_silence(tmp_path: Path) -> None:
    output = analyse(write(tmp_path / "silence.wav", np.zeros(RATE, np.float32)))

    assert output.abstain_code == AbstainCode.LOW_QUALITY


def test_it_abstains_on_a_clip_too_short_to_analyse(tmp_path: Path) -> None:
    output = analyse(write(tmp_path / "blip.wav", recording(0.05, -50)))

    assert output.abstain_code == AbstainCode.TOO_SMALL


def test_it_refuses_video_before_any_work() -> None:
    media = MediaInput(path=Path("x.mp4"), kind="video", mime="video/mp4", size=1)

    refusal = AudioDetector().applies(media)

    assert refusal is not None and refusal.abstain_code == AbstainCode.UNSUPPORTED_KIND


def test_it_flags_a_broken_ogg_comment_header_but_still_judges_the_sound(tmp_path: Path) -> None:
    path = tmp_path / "tagged.ogg"
    with sf.SoundFile(str(path), "w", RATE, 1, "VORBIS") as handle:  # a tag to overwrite with binary junk
        handle.title = "ABCDEFGH"
        handle.write(recording(3, -50))
    data = path.read_bytes()
    assert b"ABCDEFGH" in data
    broken = tmp_path / "broken.ogg"
    junk = b"\x00\x01\x02\x03\xff\xfe\x00\x01\x02\x03\x04\x05\x06\x07"
    broken.write_bytes(with_ogg_checksums(data.replace(b"TITLE=ABCDEFGH", junk)))

    clean, damaged = analyse(path), analyse(broken)

    assert "audio_malformed_metadata" not in codes(clean)
    assert damaged.status == "ok" and "audio_malformed_metadata" in codes(damaged)
    assert damaged.evidence["container"]["metadata_problem"]
