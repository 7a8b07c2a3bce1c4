"""Output shapes of analyses (plain functions: the shapes are read-only and shared with the media detail)."""

from __future__ import annotations

from typing import Any

from analysis import conf
from analysis.models import Analysis, DetectorResult
from media.storage import download_url


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def analysis_summary(analysis: Analysis) -> dict[str, Any]:
    return {
        "id": str(analysis.pk),
        "media_id": str(analysis.media_id),
        "status": analysis.status,
        "run_number": analysis.run_number,
        "queue": analysis.queue,
        "attempts": analysis.attempts,
        "trust_score": analysis.trust_score,
        "verdict": analysis.verdict or None,
        "confidence": analysis.confidence,
        "manipulation_probability": analysis.manipulation_probability,
        "scoring_policy_version": analysis.scoring_policy.version if analysis.scoring_policy else None,
        "failure_reason": analysis.failure_reason or None,
        "created_at": _iso(analysis.created_at),
        "started_at": _iso(analysis.started_at),
        "finished_at": _iso(analysis.finished_at),
    }


def detector_result(row: DetectorResult) -> dict[str, Any]:
    return {
        "detector": row.detector,
        "version": row.detector_version,
        "status": row.status,
        "score": row.score,
        "reasons": row.reasons,
        "evidence": row.evidence,
        "decisive": row.decisive,
        "artifacts": [
            {
                "name": a.get("name"),
                "content_type": a.get("content_type"),
                # Short-lived: presigned on S3, a signed Hlekkr URL on filesystem storage.
                "url": download_url(a["storage_key"], expires=conf.ARTIFACT_URL_TTL),
            }
            for a in row.artifacts or []
            if a.get("storage_key")
        ],
        "duration_ms": row.duration_ms,
    }


def analysis_detail(analysis: Analysis) -> dict[str, Any]:
    body = analysis_summary(analysis)
    body["detectors"] = [detector_result(r) for r in analysis.detector_results.all()]
    body["breakdown"] = analysis.breakdown
    body["timings"] = analysis.timings
    return body
