"""Propose the next ScoringPolicy from human-reviewed labels (docs/scoring.md, "Calibration").

Label source: the review app records the human verdict on the media item (media.MediaItem.final_verdict, written
through media services), so the analysis app reads labels there without importing review. Each labelled item
contributes its latest completed analysis: features are the detectors' clipped logits (0, i.e. "no evidence", when
a detector did not score), the target is 1 for manipulated/generated and 0 for authentic verdicts.

The fit is an L2-regularised logistic regression by Newton's method in numpy: small, exact and dependency-free.
It yields a bias and one weight per detector; decisive shifts and bands are carried over from the base policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.scoring import clipped_logit, sigmoid

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
    features = np.hstack([np.ones((len(samples), 1)), x])
    penalty = np.eye(features.shape[1]) * l2
    penalty[0, 0] = 0.0
    beta = np.zeros(features.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(features @ beta)))
        gradient = features.T @ (p - y) + penalty @ beta
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + penalty + np.eye(len(beta)) * 1e-9
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
    """Mean negative log-likelihood of `samples` under a policy's weighted part (decisive shifts excluded)."""
    total = 0.0
    for sample in samples:
        z = bias + sum(float(weights.get(n, 0.0)) * clipped_logit(p, clip) for n, p in sample.scores.items())
        p = min(max(sigmoid(z), 1e-12), 1 - 1e-12)
        total -= math.log(p) if sample.label else math.log(1 - p)
    return round(total / max(len(samples), 1), 4)


def reviewed_samples() -> list[Sample]:
    """Labelled samples from reviewed media: final_verdict joined to the latest completed analysis's scores."""
    from analysis.models import Analysis, AnalysisStatus, DetectorStatus

    analyses = (
        Analysis.objects.filter(status=AnalysisStatus.COMPLETED)
        .exclude(media__final_verdict="")
        .order_by("media_id", "-run_number")
        .values_list("pk", "media_id", "media__final_verdict")
    )
    latest: dict[object, tuple[object, int]] = {}
    for analysis_id, media_id, verdict in analyses:
        label = label_from_verdict(verdict)
        if media_id not in latest and label is not None:
            latest[media_id] = (analysis_id, label)
    from analysis.models import DetectorResult

    scores: dict[object, dict[str, float]] = {analysis_id: {} for analysis_id, _ in latest.values()}
    rows = DetectorResult.objects.filter(
        analysis_id__in=list(scores), status=DetectorStatus.OK, score__isnull=False
    ).values_list("analysis_id", "detector", "score")
    for analysis_id, detector, score in rows:
        scores[analysis_id][detector] = float(score or 0.0)  # score__isnull=False above
    return [Sample(scores=scores[analysis_id], label=label) for analysis_id, label in latest.values()]
