"""Escalation rules: from an `analysis.completed` payload to "review or not, why, how urgent, by whom". Pure.

The service (`review_item_create_for_analysis`) feeds it the payload, the active policy's numbers and the reason
categories the detectors gave; this module has no ORM so the rules are tested as plain functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PRIORITIES = ("critical", "high", "medium", "low")
KIND_EXPERTISE = {"image": "image", "video": "video", "audio": "audio_voice"}
AI_DECLARED = frozenset({"ai_declared_trusted", "ai_declared_untrusted", "ai_declared_metadata"})
PROVENANCE_CODES = frozenset(
    {"ai_declared_trusted", "ai_declared_untrusted", "provenance_tampered", "trusted_authentic"}
)


@dataclass(frozen=True)
class Thresholds:
    trust_threshold: int = 70
    probability_threshold: float = 0.6
    conflict_strength: float = 3.0
    qa_sample_rate: float = 0.02
    critical_probability: float = 0.9
    high_probability: float = 0.75


@dataclass
class Escalation:
    reasons: list[dict[str, str]] = field(default_factory=list)
    priority: str = "low"
    reviewers_required: int = 1
    required_expertise: list[str] = field(default_factory=list)
    qa_sample: bool = False
    detector_disagreement: bool = False
    client_urgent: bool = False


def qa_sampled(analysis_id: str, rate: float) -> bool:
    """Deterministic sample: the same analysis is always in or out, so runs and replays agree."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"qa:{analysis_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def evidence_conflict(balance: Any) -> tuple[float, float]:
    """(manipulation, authenticity) pull in log-odds from the scoring breakdown's `evidence_balance`.

    Both sides are weighted evidence (contributions to the score), not raw probabilities: one weak detector at
    0.9 against others at 0.02 is no conflict, and detectors that only saw editing count on neither side
    (analysis.scoring.evidence_balance). An old payload without the balance has no conflict.
    """
    if not isinstance(balance, Mapping):
        return 0.0, 0.0
    try:
        return float(balance.get("manipulation") or 0.0), float(balance.get("authenticity") or 0.0)
    except (TypeError, ValueError):
        return 0.0, 0.0


def required_expertise(
    *, kind: str, faces: int, decisive: Iterable[str], reason_categories: Iterable[str], detectors: Iterable[str]
) -> list[str]:
    tags: list[str] = []
    if kind in KIND_EXPERTISE:
        tags.append(KIND_EXPERTISE[kind])
    if faces and faces > 0:
        tags.append("face_manipulation")
    decisive_set = set(decisive)
    if decisive_set & PROVENANCE_CODES or "provenance" in set(detectors):
        tags.append("provenance")
    if decisive_set & AI_DECLARED or "generated" in set(reason_categories):
        tags.append("generated")
    return tags


def _bump(priority: str) -> str:
    return PRIORITIES[max(0, PRIORITIES.index(priority) - 1)]


def evaluate(
    payload: Mapping[str, Any], thresholds: Thresholds, *, reason_categories: Iterable[str] = ()
) -> Escalation | None:
    """None when the machine outcome stands on its own; otherwise why the item needs a human and how urgently."""
    trust = payload.get("trust_score")
    probability = payload.get("manipulation_probability")
    decisive = [str(code) for code in payload.get("decisive") or []]
    scores = payload.get("detector_scores") or {}
    result = Escalation()
    if trust is not None and trust < thresholds.trust_threshold:
        result.reasons.append(
            {"code": "low_trust", "text": f"Trust score {trust} is below {thresholds.trust_threshold}."}
        )
    if probability is not None and probability > thresholds.probability_threshold:
        result.reasons.append(
            {
                "code": "high_probability",
                "text": f"Manipulation probability {probability:.2f} is above {thresholds.probability_threshold:.2f}.",
            }
        )
    against, positive = evidence_conflict(payload.get("evidence_balance"))
    if min(against, positive) >= thresholds.conflict_strength:
        result.detector_disagreement = True
        result.reviewers_required = 2
        result.reasons.append(
            {
                "code": "detector_disagreement",
                "text": f"Strong evidence conflicts: {against:.1f} log-odds towards manipulation against "
                f"{positive:.1f} towards authenticity (both at least {thresholds.conflict_strength:g}): "
                "two reviewers.",
            }
        )
    if payload.get("review_requested"):
        result.reasons.append({"code": "client_requested", "text": "The client asked for a human review."})
    if trust is None and probability is None:
        result.reasons.append({"code": "no_machine_score", "text": "No detector could score this item."})
    if not result.reasons and qa_sampled(str(payload.get("analysis_id", "")), thresholds.qa_sample_rate):
        result.qa_sample = True
        result.reasons.append(
            {"code": "qa_sample", "text": "Sampled for quality assurance from automatically decided items."}
        )
    if not result.reasons:
        return None

    p = float(probability) if probability is not None else 0.0
    if p >= thresholds.critical_probability or "known_fake" in decisive:
        priority = "critical"
    elif p >= thresholds.high_probability or set(decisive) & (AI_DECLARED | {"provenance_tampered"}):
        priority = "high"
    elif p > thresholds.probability_threshold or (trust is not None and trust < thresholds.trust_threshold):
        priority = "medium"
    else:
        priority = "low"
    if str(payload.get("priority", "normal")) == "urgent":
        result.client_urgent = True
        priority = _bump(priority)
    result.priority = priority
    result.required_expertise = required_expertise(
        kind=str(payload.get("kind") or ""),
        faces=int(payload.get("faces") or 0),
        decisive=decisive,
        reason_categories=reason_categories,
        detectors=[name for name, value in scores.items() if value is not None],
    )
    return result


def human_trust(verdict: str, confidence: float) -> float:
    """A human verdict on the trust scale, so it can be compared with the machine's score."""
    if verdict == "authentic":
        return 50 + 50 * confidence
    if verdict == "manipulated":
        return 50 - 50 * confidence
    return 50.0


def is_inconsistent(
    *,
    verdict: str,
    confidence: float,
    machine_trust: int | None,
    machine_confidence: float | None,
    gap: int,
    min_confidence: float,
) -> bool:
    """The guide's validator: |human - AI| > gap trust points while the AI was confident (> min_confidence)."""
    if machine_trust is None or machine_confidence is None or verdict == "inconclusive":
        return False
    return abs(human_trust(verdict, confidence) - machine_trust) > gap and machine_confidence > min_confidence
