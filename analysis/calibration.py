"""Propose the next ScoringPolicy from human-reviewed labels (docs/scoring.md, "Calibration").

Label source: the review app records the human verdict on the media item (media.MediaItem.final_verdict, written
through media services), so the analysis app reads labels there without importing review. Each labelled item
contributes its latest completed analysis: features are the detectors' clipped logits (0, i.e. "no evidence", when
a detector did not score), the target is 1 for manipulated/generated and 0 for authentic verdicts.

The fit is an L2-regularised logistic regression by Newton's method in numpy: small, exact and dependency-free.
It yields a bias and one weight per detector; decisive shifts and bands are carried over from the base policy.

Labels are weighted (docs/scoring.md, "Learning from verdicts"): an ordinary review decision counts 1. Other apps
say which labels are cleaner through `register_label_weighter` (the review app, which analysis never imports):
a QA-sample decision counts 2, because QA items are drawn at random from what the machine decided alone, so they
correct the bias of learning only from escalated (hard, machine-doubted) items. Gold items marked by leads
count 3 (their verdict was settled on purpose). The weight multiplies the item's term in the
likelihood of the fit and in every shadow metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.models import Analysis, AnalysisStatus, DetectorResult
from analysis.scoring import DetectorEvidence, clipped_logit, sigmoid

POSITIVE = ("manipulated", "generated", "fake", "likely_manipulated")
NEGATIVE = ("authentic", "likely_authentic", "genuine")


def label_from_verdict(verdict: str) -> int | None:
    """1 = manipulated or generated, 0 = authentic, None = not usable (suspicious, inconclusive, empty)."""
    value = (verdict or "").strip().lower()
    if value in POSITIVE:
        return 1
    if value in NEGATIVE:
        return 0
    return None


@dataclass(frozen=True)
class Sample:
    scores: dict[str, float]  # detector -> probability
    label: int
    weight: float = 1.0


# fn(media_ids) -> {media_id: (weight, source)} for labels cleaner (or dirtier) than an ordinary decision.
LabelWeighter = Callable[[list[Any]], dict[Any, tuple[float, str]]]
_weighters: list[LabelWeighter] = []


def register_label_weighter(fn: LabelWeighter) -> LabelWeighter:
    if fn not in _weighters:
        _weighters.append(fn)
    return fn


# The review app's escalation rule (result -> goes to review?), so shadow metrics count what review would do.
_escalation_rules: list[Callable[[Any], bool]] = []


def register_escalation_rule(fn: Callable[[Any], bool]) -> None:
    _escalation_rules[:] = [fn]


def escalation_rule() -> Callable[[Any], bool] | None:
    return _escalation_rules[0] if _escalation_rules else None


def label_weights(media_ids: list[Any]) -> dict[Any, tuple[float, str]]:
    """The heaviest claim any registered weigher makes for each item; unclaimed items weigh 1 ("review")."""
    weights: dict[Any, tuple[float, str]] = {}
    for weigher in list(_weighters):
        for media_id, claim in (weigher(media_ids) or {}).items():
            if claim[0] > weights.get(media_id, (1.0, "review"))[0]:
                weights[media_id] = claim
    return weights


@dataclass
class LabelledItem:
    media_id: Any
    analysis_id: Any
    label: int
    weight: float = 1.0
    source: str = "review"
    evidence: list[Any] = field(default_factory=list)  # scoring.DetectorEvidence of the latest analysis

    def sample(self) -> Sample:
        scores = {e.detector: float(e.score) for e in self.evidence if e.status == "ok" and e.score is not None}
        return Sample(scores=scores, label=self.label, weight=self.weight)


@dataclass(frozen=True)
class Fit:
    bias: float
    weights: dict[str, float]
    log_loss: float
    samples: int
    positives: int


def design_matrix(samples: list[Sample], detectors: list[str], clip: float) -> np.ndarray:
    x = np.zeros((len(samples), len(detectors)))
    for i, sample in enumerate(samples):
        for j, name in enumerate(detectors):
            if name in sample.scores:
                x[i, j] = clipped_logit(sample.scores[name], clip)
    return x


def fit_logistic(samples: list[Sample], *, clip: float = 0.02, l2: float = 1.0, iterations: int = 50) -> Fit:
    """Weights and bias maximising the penalised likelihood (the bias is not penalised)."""
    detectors = sorted({name for s in samples for name in s.scores})
    x = design_matrix(samples, detectors, clip)
    y = np.array([s.label for s in samples], dtype=float)
    w = np.array([s.weight for s in samples], dtype=float)
    features = np.hstack([np.ones((len(samples), 1)), x])
    penalty = np.eye(features.shape[1]) * l2
    penalty[0, 0] = 0.0
    beta = np.zeros(features.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(features @ beta)))
        gradient = features.T @ (w * (p - y)) + penalty @ beta
        hessian = features.T @ (features * (w * p * (1 - p))[:, None]) + penalty + np.eye(len(beta)) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return Fit(
        bias=round(float(beta[0]), 4),
        weights={name: round(float(w), 4) for name, w in zip(detectors, beta[1:], strict=True)},
        log_loss=log_loss(samples, float(beta[0]), dict(zip(detectors, beta[1:], strict=True)), clip),
        samples=len(samples),
        positives=int(y.sum()),
    )


def log_loss(samples: list[Sample], bias: float, weights: dict[str, float], clip: float) -> float:
    """Weighted mean negative log-likelihood of `samples` under a policy's weighted part (no decisive shifts)."""
    total = 0.0
    for sample in samples:
        z = bias + sum(float(weights.get(n, 0.0)) * clipped_logit(p, clip) for n, p in sample.scores.items())
        p = min(max(sigmoid(z), 1e-12), 1 - 1e-12)
        total -= sample.weight * (math.log(p) if sample.label else math.log(1 - p))
    return round(total / max(sum(s.weight for s in samples), 1e-12), 4)


def reviewed_items(*, last: int | None = None) -> list[LabelledItem]:
    """Reviewed media with a usable label, newest decision first (at most `last`), each with its latest completed
    analysis's evidence and its label weight."""
    rows = (
        Analysis.objects.filter(status=AnalysisStatus.COMPLETED)
        .exclude(media__final_verdict="")
        .order_by("-media__updated_at", "media_id", "-run_number")
        .values_list("pk", "media_id", "media__final_verdict")
    )
    items: dict[Any, LabelledItem] = {}
    for analysis_id, media_id, verdict in rows.iterator():
        label = label_from_verdict(verdict)
        if media_id in items or label is None:
            continue
        items[media_id] = LabelledItem(media_id=media_id, analysis_id=analysis_id, label=label)
        if last is not None and len(items) >= last:
            break
    by_analysis = {item.analysis_id: item for item in items.values()}
    for row in DetectorResult.objects.filter(analysis_id__in=list(by_analysis)).order_by("pk"):
        by_analysis[row.analysis_id].evidence.append(
            DetectorEvidence(
                detector=row.detector,
                status=row.status,
                score=row.score if row.status == "ok" else None,
                reasons=row.reasons or [],
                decisive=row.decisive or [],
            )
        )
    for media_id, (weight, source) in label_weights(list(items)).items():
        if media_id in items:
            items[media_id].weight, items[media_id].source = weight, source
    return list(items.values())
