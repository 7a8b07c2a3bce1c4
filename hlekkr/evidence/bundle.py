"""Build the evidence bundle of one media item (JSON) and stream it as a zip with its artifacts and original."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.utils import timezone

from analysis import conf as analysis_conf
from analysis.api.serializers import analysis_summary, detector_result
from analysis.models import Analysis, AnalysisStatus, DetectorResult
from hlekkr.exceptions import Conflict
from media.models import MediaItem, MediaStatus
from media.selectors import media_item_facts
from review.models import ReviewItem

logger = logging.getLogger(__name__)

BUNDLE_VERSION = 1
COPY_CHUNK = 256 * 1024


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def latest_completed_analysis(item: MediaItem) -> Analysis:
    """The newest completed analysis of `item`; 409 analysis_pending while none has completed."""
    analysis = (
        Analysis.objects.filter(media=item, status=AnalysisStatus.COMPLETED)
        .select_related("scoring_policy")
        .order_by("-run_number")
        .first()
    )
    if analysis is None:
        raise Conflict(
            "No analysis of this item has completed yet; try again when analysis_status is completed.",
            code="analysis_pending",
            details={"analysis_status": item.analysis_status or None},
        )
    return analysis


def _provenance(results: dict[str, DetectorResult]) -> dict[str, Any] | None:
    row = results.get("provenance")
    if row is None:
        return None
    return {"status": row.status, "score": row.score, "reasons": row.reasons, "decisive": row.decisive, **row.evidence}


def _hash_matches(results: dict[str, DetectorResult]) -> dict[str, Any] | None:
    row = results.get("known_content")
    if row is None:
        return None
    evidence = row.evidence or {}
    return {
        "status": row.status,
        "pdq_hash": evidence.get("pdq_hash"),
        "quality": evidence.get("quality"),
        "match_count": evidence.get("match_count", len(evidence.get("matches") or [])),
        "matches": evidence.get("matches") or [],
        "decisive": row.decisive,
    }


def _review(analysis: Analysis) -> dict[str, Any] | None:
    """The human outcome for this analysis, when review has an item for it."""
    item = ReviewItem.objects.filter(analysis=analysis, is_gold_probe=False).prefetch_related("decisions").first()
    if item is None:
        return None
    decisions = list(item.decisions.all())
    # Moderators' names and notes stay inside Hlekkr; the client gets the outcome and each reviewer's verdict.
    return {
        "status": item.status,
        "priority": item.priority,
        "final_verdict": item.final_verdict or None,
        "final_confidence": item.final_confidence,
        "decided_at": _iso(item.decided_at),
        "reviewers_required": item.reviewers_required,
        "decisions": [{"verdict": d.verdict, "confidence": d.confidence, "at": _iso(d.created_at)} for d in decisions],
    }


def build(item: MediaItem) -> tuple[dict[str, Any], list[DetectorResult]]:
    """The evidence bundle of `item` (the caller checked ownership). Raises Conflict while analysis is pending."""
    analysis = latest_completed_analysis(item)
    rows = list(DetectorResult.objects.filter(analysis=analysis).order_by("detector"))
    by_name = {row.detector: row for row in rows}
    policy = analysis.scoring_policy
    bundle = {
        "bundle_version": BUNDLE_VERSION,
        "generated_at": _iso(timezone.now()),
        "media": media_item_facts(item),  # described as the media detail body describes it
        "analysis": analysis_summary(analysis),
        "trust": {
            "trust_score": analysis.trust_score,
            "verdict": analysis.verdict or None,
            "confidence": analysis.confidence,
            "manipulation_probability": analysis.manipulation_probability,
            "policy_version": policy.version if policy else None,
            "breakdown": analysis.breakdown,
        },
        "detectors": [detector_result(row) for row in rows],
        "provenance": _provenance(by_name),
        "hash_matches": _hash_matches(by_name),
        "review": _review(analysis),
        "final_verdict": item.final_verdict or None,
        "artifact_url_ttl_seconds": analysis_conf.ARTIFACT_URL_TTL,
    }
    bundle["trust_score"] = analysis.trust_score  # top level too: the number most clients want first
    return bundle, rows


class _Sink:
    """A write-only file for ZipFile that hands out what was written so far (ZipFile streams to non-seekable
    outputs by writing data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _zip_name(raw: str, fallback: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in raw).strip("._")
    return cleaned[:100] or fallback


def stream_zip(item: MediaItem, bundle: dict[str, Any], rows: list[DetectorResult]) -> Iterator[bytes]:
    """evidence.json, every artifact and the original, as a zip produced chunk by chunk (never whole in memory).

    In the zip, artifacts and the original are referenced by their path inside the archive (`path`), since the
    short-lived URLs in the JSON stop working long before an archived bundle is read.
    """
    files: list[tuple[str, str]] = []  # (path in zip, storage key)
    document = json.loads(json.dumps(bundle))
    keys_by_detector = {
        row.detector: [a["storage_key"] for a in row.artifacts or [] if a.get("storage_key")] for row in rows
    }
    for detector in document["detectors"]:
        row_artifacts = detector.get("artifacts") or []
        keys = keys_by_detector.get(detector["detector"], [])
        for artifact, key in zip(row_artifacts, keys, strict=False):
            path = f"artifacts/{_zip_name(detector['detector'], 'detector')}/{_zip_name(artifact['name'], 'artifact')}"
            artifact["path"] = path
            files.append((path, key))
    if item.storage_key and item.status == MediaStatus.STORED:
        path = f"original/{_zip_name(item.original_filename, 'original')}"
        document["media"]["path"] = path
        files.append((path, item.storage_key))

    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        archive.writestr("evidence.json", json.dumps(document, indent=2, sort_keys=True))
        yield sink.take()
        for path, key in files:
            try:
                source = default_storage.open(key, "rb")
            except (FileNotFoundError, OSError):
                logger.warning("evidence zip: %s is missing from storage", key)
                continue
            with source, archive.open(zipfile.ZipInfo(path, date_time=_now_tuple()), "w") as target:
                # Media is already compressed; storing it costs nothing and saves CPU.
                while chunk := source.read(COPY_CHUNK):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def _now_tuple() -> tuple[int, int, int, int, int, int]:
    now = timezone.now()
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)
