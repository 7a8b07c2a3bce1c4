"""Hostile or broken media reaching the worker: typed abstentions or errors, a finished analysis, never `running`."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import pytest
from analysis_samples import photo_jpeg

from analysis import services
from analysis.models import AnalysisQueue, AnalysisStatus


def _truncated_jpeg() -> bytes:
    return photo_jpeg("coffee", side=512)[:2000]


def _zero_frame_video() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    return buffer.getvalue()


def _silent_wav_without_samples() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    return buffer.getvalue()


def _jpeg_with_malformed_c2pa() -> bytes:
    """A JPEG whose APP11 segment claims to be a C2PA JUMBF box but holds garbage."""
    jpeg = photo_jpeg(side=128)
    jumbf = b"JP" + struct.pack(">HI", 1, 1) + struct.pack(">I", 64) + b"jumb" + b"\x00\xffgarbage-c2pa" * 4
    segment = b"\xff\xeb" + struct.pack(">H", len(jumbf) + 2) + jumbf
    return jpeg[:2] + segment + jpeg[2:]


CASES = {
    "truncated_jpeg": (_truncated_jpeg, "image", "image/jpeg"),
    "empty_file": (lambda: b"", "image", "image/jpeg"),
    "zero_frame_video": (_zero_frame_video, "video", "video/mp4"),
    "audio_without_samples": (_silent_wav_without_samples, "audio", "audio/x-wav"),
    "malformed_c2pa": (_jpeg_with_malformed_c2pa, "image", "image/jpeg"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_media_finishes_with_typed_results_and_never_stays_running(
    case: str, client_a: Any, stored_media: Any
) -> None:
    make, kind, mime = CASES[case]
    item = stored_media(client_a, make(), kind=kind, mime=mime)
    analysis = services.analysis_create(media=item, queue=AnalysisQueue.INTERACTIVE)
    result = services.analysis_run(analysis_id=analysis.pk)
    assert result is not None
    result.refresh_from_db()
    assert result.status in (AnalysisStatus.COMPLETED, AnalysisStatus.FAILED)
    if result.status == AnalysisStatus.FAILED:
        assert result.failure_reason
        return
    rows = list(result.detector_results.all())
    assert rows, "every registered detector leaves a row"
    for row in rows:
        assert row.status in ("ok", "abstained", "error")
        assert row.reasons and row.reasons[0]["code"], f"{row.detector} gave no typed reason"
    if result.verdict == "inconclusive":
        assert result.breakdown["inconclusive_reason"]
        assert result.trust_score is None


def test_a_truncated_jpeg_is_abstained_on_as_unreadable_by_the_pixel_detectors(
    client_a: Any, stored_media: Any
) -> None:
    item = stored_media(client_a, _truncated_jpeg())
    analysis = services.analysis_run(analysis_id=services.analysis_create(media=item).pk)
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    codes = {r.detector: (r.status, r.reasons[0]["code"]) for r in analysis.detector_results.all()}
    for name in ("ela", "copy_move", "faces", "known_content"):
        assert codes[name] == ("abstained", "unreadable"), codes


def test_an_image_is_not_examined_by_the_video_and_audio_detectors(client_a: Any, stored_media: Any) -> None:
    item = stored_media(client_a)
    analysis = services.analysis_run(analysis_id=services.analysis_create(media=item).pk)
    assert analysis is not None
    rows = {r.detector: r for r in analysis.detector_results.all()}
    assert rows["video"].status == "abstained" and rows["video"].reasons[0]["code"] == "unsupported_kind"
    assert rows["audio"].status == "abstained" and rows["audio"].reasons[0]["code"] == "unsupported_kind"


@pytest.mark.parametrize(
    ("case", "detector", "code"),
    [
        ("zero_frame_video", "video", "unreadable"),
        ("audio_without_samples", "audio", "no_samples"),
        ("empty_file", "provenance", "unreadable"),
    ],
)
def test_broken_media_gets_the_typed_abstain_code_from_the_detector_for_its_kind(
    case: str, detector: str, code: str, client_a: Any, stored_media: Any
) -> None:
    make, kind, mime = CASES[case]
    item = stored_media(client_a, make(), kind=kind, mime=mime)
    analysis = services.analysis_run(analysis_id=services.analysis_create(media=item).pk)
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    row = analysis.detector_results.get(detector=detector)
    assert (row.status, row.reasons[0]["code"]) == ("abstained", code)
