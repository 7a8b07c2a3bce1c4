"""Combine detector results into one trust score with an explained breakdown (see docs/scoring.md).

Pure functions over plain data: no ORM, no settings. The pipeline converts DetectorResult rows and the active
ScoringPolicy into the dataclasses below, calls `score()`, and stores what comes back.

    logit(P) = bias + sum_d w_d * logit(clip(p_d))  +  sum of decisive shifts
    trust    = round(100 * (1 - P))

Rules on top of the formula:

* inconclusive: with no scored detector and no decisive evidence there is nothing to combine; the verdict is
  ``inconclusive`` and the reason names why each detector abstained or failed.
* edited-only cap: software touching a file (resize, re-save, crop) is not evidence of deception. When no
  reason points at manipulation or generation and no decisive evidence pushes up, P is capped just below the
  likely-manipulated band, so an edited camera photo can at worst be ``suspicious``.
* declaration floor: a declaration of AI generation (C2PA or metadata), a broken C2PA integrity check or a
  known-fake match holds P at least at the likely-manipulated band, whatever the forensic detectors found:
  no number of clean pixel statistics outweighs the file saying it was generated.
* clean-evidence cap: detectors that looked and found nothing are weak, correlated witnesses (they read the
  same pixels), not independent ones. Their combined pull towards "authentic" counts in full up to half of
  `clean_evidence_cap` and is then compressed smoothly towards the cap (-5.5: with the bias, a photo where every
  forensic detector is clean sits at trust ~98). Smoothly, so that "cleaner" still ranks as more authentic; the
  knee at half the cap leaves items with one or two weighted detectors (audio, video) as they were. Without it,
  each detector added to the ensemble pushed clean and weakly doctored photos alike to trust 100, where a
  finding no longer moved the integer score. Evidence *for* authenticity (camera metadata, a known original,
  trusted provenance) and findings are never capped.
* positive evidence: a trust score in the top band is ``likely_authentic`` only when something positive is
  known (a trusted capture manifest without AI, a known-original match); otherwise it is
  ``no_manipulation_found`` - nothing was found, which is not proof.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Reason categories (mirrors analysis.detectors.base.Category without importing detector code).
EDITED = "edited"
MANIPULATED = "manipulated"
GENERATED = "generated"
AUTHENTIC = "authentic"
FINDING_CATEGORIES = (EDITED, MANIPULATED, GENERATED, AUTHENTIC)

# Decisive evidence that pushes P up; the others pull it down.
UPWARD_DECISIVE = frozenset(
    {"ai_declared_trusted", "ai_declared_untrusted", "ai_declared_metadata", "known_fake", "provenance_tampered"}
)
# Decisive evidence that holds P in the likely-manipulated band (the declaration floor).
FLOOR_DECISIVE = UPWARD_DECISIVE
# Positive evidence of authenticity: the only way to `likely_authentic`.
AUTHENTICITY_DECISIVE = frozenset({"trusted_authentic", "known_authentic"})
# Abstentions that mean "this item lacked what the detector reads" (no metadata, no manifest, too small): the
# detector could have looked and found nothing to look at, so the item was examined less (lowers confidence).
# Other abstentions (not configured, wrong kind) say nothing about the item.
UNEXAMINED_CODES = frozenset({"no_data", "too_small", "low_quality", "unreadable", "no_frames", "no_samples"})

LIKELY_AUTHENTIC = "likely_authentic"
NO_MANIPULATION_FOUND = "no_manipulation_found"
SUSPICIOUS = "suspicious"
LIKELY_MANIPULATED = "likely_manipulated"
INCONCLUSIVE = "inconclusive"

DEFAULT_BIAS = 1.5  # see docs/scoring.md: forensic detectors finding nothing is weak evidence of authenticity
DEFAULT_WEIGHTS: dict[str, float] = {
    "metadata": 1.5,
    "ela": 0.35,
    "jpeg": 0.3,
    "spectral": 0.35,
    "copy_move": 0.75,  # verified copies only (copy_move 2.1); migration 0015
    "jpeg_local": 0.3,
    "double_jpeg": 1.0,  # only ever raises the score (p >= 0.5); migration 0014
    "noise_residual": 0.0,  # at chance on the forgery corpus (docs/analysis.md): shown, not weighted
    "generated": 0.5,
    "jpeg_grid": 0.5,
    "provenance": 1.0,
    "known_content": 1.0,
    "video": 0.8,
    "audio": 0.6,
    "bedrock": 1.0,
}
DEFAULT_DECISIVE: dict[str, float] = {
    "ai_declared_trusted": 6.0,
    "known_fake": 6.0,
    "ai_declared_untrusted": 3.0,
    "ai_declared_metadata": 2.0,
    "provenance_tampered": 3.0,
    "trusted_authentic": -3.0,
    "known_authentic": -4.0,
}


@dataclass(frozen=True)
class Policy:
    """The numbers a ScoringPolicy row holds; `from_obj` reads them off a row (or anything shaped like one)."""

    version: int
    bias: float = DEFAULT_BIAS
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    decisive: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DECISIVE))
    clip: float = 0.02
    authentic_threshold: int = 70
    manipulated_threshold: int = 40
    edited_only_cap: bool = True
    clean_evidence_cap: float | None = -5.5  # None: uncapped (see the module docstring)

    def __post_init__(self) -> None:
        if not 0.0 < self.clip < 0.5:
            raise ValueError("clip must lie in (0, 0.5)")
        if self.clean_evidence_cap is not None and not -1000.0 < self.clean_evidence_cap <= 0.0:
            raise ValueError("clean_evidence_cap must be a log-odds value <= 0 (or None)")
        if not 0 < self.manipulated_threshold < self.authentic_threshold <= 100:
            raise ValueError("thresholds must satisfy 0 < manipulated < authentic <= 100")

    @classmethod
    def from_obj(cls, obj: Any) -> Policy:
        return cls(
            version=int(obj.version),
            bias=float(obj.bias),
            weights={str(k): float(v) for k, v in (obj.weights or {}).items()},
            decisive={str(k): float(v) for k, v in (obj.decisive or {}).items()},
            clip=float(obj.clip),
            authentic_threshold=int(obj.authentic_threshold),
            manipulated_threshold=int(obj.manipulated_threshold),
            edited_only_cap=bool(getattr(obj, "edited_only_cap", True)),
            clean_evidence_cap=_optional_float(getattr(obj, "clean_evidence_cap", None)),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


DEFAULT_POLICY = Policy(version=0)
"""The one set of default scoring numbers: scoring without a policy row, a policy created without a base and the
ScoringPolicy model's field defaults (what admin's "add" form starts from) all read it. Migration 0003 writes
v1's numbers out so that it means the same forever; a test keeps the two equal."""


def default_weights() -> dict[str, float]:
    return dict(DEFAULT_POLICY.weights)


def default_decisive() -> dict[str, float]:
    return dict(DEFAULT_POLICY.decisive)


@dataclass(frozen=True)
class DetectorEvidence:
    """One detector's result as scoring sees it."""

    detector: str
    status: str  # ok | abstained | error
    score: float | None = None
    reasons: Sequence[Mapping[str, str]] = ()  # {"code", "text", "category"}
    decisive: Sequence[str] = ()


@dataclass(frozen=True)
class ScoreResult:
    manipulation_probability: float | None
    trust_score: int | None
    confidence: float
    verdict: str
    breakdown: dict[str, Any]


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def clipped_logit(p: float, clip: float) -> float:
    return logit(min(max(p, clip), 1.0 - clip))


def verdict_for(trust: int, policy: Policy, *, positive_evidence: bool = False) -> str:
    if trust >= policy.authentic_threshold:
        return LIKELY_AUTHENTIC if positive_evidence else NO_MANIPULATION_FOUND
    if trust >= policy.manipulated_threshold:
        return SUSPICIOUS
    return LIKELY_MANIPULATED


def trust_from_probability(p: float) -> int:
    return round(100.0 * (1.0 - p))


def score(results: Iterable[DetectorEvidence], policy: Policy) -> ScoreResult:
    """The trust score, verdict, confidence and breakdown for one analysis."""
    results = list(results)
    contributions: list[dict[str, Any]] = []
    decisive: list[dict[str, Any]] = []
    abstained: list[dict[str, str]] = []
    unexamined_weight = 0.0
    errors: list[dict[str, str]] = []
    findings: dict[str, list[dict[str, str]]] = {category: [] for category in FINDING_CATEGORIES}

    for result in results:
        if result.status == "error":
            errors.append({"detector": result.detector, "text": _first_text(result.reasons) or "detector failed"})
            continue
        if result.status == "abstained":
            code = str(result.reasons[0].get("code", "")) if result.reasons else ""
            abstained.append({"detector": result.detector, "code": code, "text": _first_text(result.reasons)})
            if code in UNEXAMINED_CODES:
                unexamined_weight += abs(float(policy.weights.get(result.detector, 0.0)))
            continue
        for reason in result.reasons:
            category = str(reason.get("category", ""))
            if category in findings:
                findings[category].append(
                    {
                        "detector": result.detector,
                        "code": str(reason.get("code", "")),
                        "text": str(reason.get("text", "")),
                    }
                )
        weight = float(policy.weights.get(result.detector, 0.0))
        if result.score is not None and weight != 0.0:
            detector_logit = clipped_logit(float(result.score), policy.clip)
            contributions.append(
                {
                    "detector": result.detector,
                    "score": round(float(result.score), 4),
                    "weight": weight,
                    "logit": round(detector_logit, 4),
                    "contribution": round(weight * detector_logit, 4),
                    "direction": _direction(result.reasons),
                }
            )
        for code in result.decisive:
            # A code the policy row does not name (added after the row was written) takes its default shift.
            shift = float(policy.decisive.get(str(code), DEFAULT_DECISIVE.get(str(code), 0.0)))
            decisive.append({"code": str(code), "detector": result.detector, "shift": shift})

    breakdown: dict[str, Any] = {
        "policy_version": policy.version,
        "bias": policy.bias,
        "contributions": contributions,
        "decisive": decisive,
        "edited": findings[EDITED],
        "manipulated": findings[MANIPULATED],
        "generated": findings[GENERATED],
        "authentic": findings[AUTHENTIC],
        "abstained": abstained,
        "errors": errors,
    }

    if not contributions and not any(d["shift"] for d in decisive):
        breakdown["inconclusive_reason"] = _inconclusive_reason(abstained, errors, results)
        breakdown["summary"] = breakdown["inconclusive_reason"]
        return ScoreResult(None, None, 0.0, INCONCLUSIVE, breakdown)

    weighted = sum(c["weight"] * c["logit"] for c in contributions)
    clean = sum(c["contribution"] for c in contributions if c["direction"] == "none" and c["contribution"] < 0)
    counted_clean = capped_clean_evidence(clean, policy.clean_evidence_cap)
    clean_capped = counted_clean != clean
    weighted += counted_clean - clean
    shifts = sum(d["shift"] for d in decisive)
    total_logit = policy.bias + weighted + shifts
    probability = sigmoid(total_logit)

    pushes_up = any(d["shift"] > 0 for d in decisive)
    capped = False
    if policy.edited_only_cap and not pushes_up and not findings[MANIPULATED] and not findings[GENERATED]:
        # The highest P whose trust is still in the suspicious band (trust == manipulated_threshold).
        ceiling = 1.0 - policy.manipulated_threshold / 100.0
        if probability > ceiling:
            probability = ceiling
            capped = True
    floored = False
    if any(d["code"] in FLOOR_DECISIVE and d["shift"] > 0 for d in decisive):
        # The lowest P whose trust is in the likely-manipulated band (trust == manipulated_threshold - 1).
        floor = 1.0 - (policy.manipulated_threshold - 1) / 100.0
        if probability < floor:
            probability = floor
            floored = True

    trust = trust_from_probability(probability)
    positive = any(d["code"] in AUTHENTICITY_DECISIVE and d["shift"] < 0 for d in decisive)
    verdict = verdict_for(trust, policy, positive_evidence=positive)
    examined = _examined_share(contributions, unexamined_weight)
    confidence = _confidence(contributions, decisive, total_logit, examined)
    breakdown.update(
        {
            "logit": round(total_logit, 4),
            "weighted_sum": round(weighted, 4),
            "decisive_shift": round(shifts, 4),
            "edited_only_cap_applied": capped,
            "clean_evidence": round(clean, 4),
            "clean_evidence_cap_applied": clean_capped,
            "declaration_floor_applied": floored,
            "positive_evidence": positive,
            "examined_share": round(examined, 3),
            "evidence_balance": evidence_balance(contributions, decisive),
        }
    )
    breakdown["summary"] = _summary(verdict, findings, decisive, capped)
    return ScoreResult(round(probability, 4), trust, confidence, verdict, breakdown)


def capped_clean_evidence(clean: float, cap: float | None) -> float:
    """The log-odds that `clean` (the sum of "found nothing" contributions, <= 0) counts for: all of it down to
    half the cap, then compressed with tanh so it approaches `cap` and never passes it (strictly monotonic)."""
    if cap is None or cap >= 0 or clean >= cap / 2:
        return clean
    knee = cap / 2
    return knee + knee * math.tanh((clean - knee) / knee)


def _direction(reasons: Sequence[Mapping[str, str]]) -> str:
    """What a detector's contribution stands for: `against` (it found manipulation or generation), `for`
    (it found positive evidence of authenticity) or `none` (editing traces, or nothing found)."""
    categories = {str(r.get("category", "")) for r in reasons}
    if categories & {MANIPULATED, GENERATED}:
        return "against"
    if AUTHENTIC in categories:
        return "for"
    return "none"


def evidence_balance(contributions: list[dict[str, Any]], decisive: list[dict[str, Any]]) -> dict[str, float]:
    """How strongly findings point at manipulation and at authenticity, in log-odds (docs/review.md).

    `manipulation`: the positive contributions of detectors that found manipulation or generation, plus
    upward decisive shifts. `authenticity`: the magnitude of negative contributions of detectors that found
    positive evidence (camera metadata, a known original), plus downward decisive shifts. Detectors that only
    saw editing, or saw nothing, count on neither side: a clean ELA map is not a witness for the defence, and
    a resize is not an accusation. `conflict` is the smaller of the two: high only when both sides are strong.
    """
    against = sum(c["contribution"] for c in contributions if c.get("direction") == "against" and c["contribution"] > 0)
    positive = sum(-c["contribution"] for c in contributions if c.get("direction") == "for" and c["contribution"] < 0)
    against += sum(d["shift"] for d in decisive if d["shift"] > 0)
    positive += sum(-d["shift"] for d in decisive if d["shift"] < 0)
    return {
        "manipulation": round(against, 3),
        "authenticity": round(positive, 3),
        "conflict": round(min(against, positive), 3),
    }


def _examined_share(contributions: list[dict[str, Any]], unexamined_weight: float) -> float:
    """The share of the policy weight that could look at this item: detectors that scored, against those plus
    the ones that found nothing to read (no metadata, no manifest). A stripped image scores low."""
    scored = sum(abs(c["weight"]) for c in contributions)
    total = scored + unexamined_weight
    return scored / total if total > 0 else 0.0


def _confidence(
    contributions: list[dict[str, Any]], decisive: list[dict[str, Any]], total_logit: float, examined: float = 1.0
) -> float:
    """Grows with the number of scoring detectors, with how much of the item could be examined, and with how
    much of their pull agrees with the outcome.

    coverage = 1 - exp(-n / 2)   (1 detector 0.39, 3 detectors 0.78, 5 detectors 0.92)
    examined = weight of scoring detectors / (that + weight of detectors that found nothing to read)
    agreement = |sum of contributions| / sum of |contributions|   (1 when all pull the same way)
    confidence = coverage * examined * (0.5 + 0.5 * agreement)
    Decisive evidence in the direction of the outcome lifts confidence to at least 0.9.
    """
    n = len(contributions)
    coverage = 1.0 - math.exp(-n / 2.0)
    magnitude = sum(abs(c["contribution"]) for c in contributions)
    agreement = abs(sum(c["contribution"] for c in contributions)) / magnitude if magnitude > 0 else 1.0
    confidence = coverage * examined * (0.5 + 0.5 * agreement)
    if any(d["shift"] and (d["shift"] > 0) == (total_logit > 0) for d in decisive):
        confidence = max(confidence, 0.9)
    return round(min(confidence, 1.0), 3)


def _first_text(reasons: Sequence[Mapping[str, str]]) -> str:
    return str(reasons[0].get("text", "")) if reasons else ""


def _inconclusive_reason(
    abstained: list[dict[str, str]], errors: list[dict[str, str]], results: list[DetectorEvidence]
) -> str:
    if not results:
        return "No detector applies to this kind of media."
    parts = [f"{a['detector']}: {a['text'] or a['code']}" for a in abstained]
    parts += [f"{e['detector']} failed" for e in errors]
    informational = [r.detector for r in results if r.status == "ok"]
    if informational:
        parts.append(f"{', '.join(informational)}: informational only")
    return "No detector produced a score. " + "; ".join(parts)


def _summary(
    verdict: str, findings: dict[str, list[dict[str, str]]], decisive: list[dict[str, Any]], capped: bool
) -> str:
    said = []
    for category in (GENERATED, MANIPULATED, EDITED):
        if findings[category]:
            said.append(f"{category}: {len({f['code'] for f in findings[category]})} finding(s)")
    if decisive:
        said.append("decisive: " + ", ".join(sorted({d["code"] for d in decisive})))
    if capped:
        said.append("only editing evidence, kept out of the manipulated band")
    return verdict.replace("_", " ") + (" (" + "; ".join(said) + ")" if said else "")
