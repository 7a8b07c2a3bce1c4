"""Shadow evaluation of scoring policies on reviewed items (docs/scoring.md, "Learning from verdicts").

Pure functions, no ORM: each labelled item is its latest completed analysis's detector evidence, the human label
(1 manipulated/generated, 0 authentic) and a weight (how much that label is trusted; see calibration.py). A policy
is scored exactly as the pipeline scores (scoring.score, decisive evidence included) and compared by:

* weighted log-loss of the manipulation probability (lower is better);
* weighted AUC: the probability that a manipulated item gets a higher P than an authentic one (ties count 1/2);
* escalation rate: the share of the items the policy would send to human review (`escalates`);
* a reliability diagram: items binned by predicted P (10 bins); per bin the mean prediction against the weighted
  share that was manipulated. A calibrated policy lies on the diagonal. Drawn as a PNG with Pillow.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from analysis import scoring

BINS = 10


@dataclass(frozen=True)
class Labelled:
    evidence: Sequence[scoring.DetectorEvidence]
    label: int  # 1 manipulated or generated, 0 authentic
    weight: float = 1.0


@dataclass
class Metrics:
    items: int
    scored: int  # items the policy gave a probability (the rest were inconclusive)
    log_loss: float | None
    auc: float | None
    escalation_rate: float | None
    reliability: list[dict[str, float]] = field(default_factory=list)  # {"predicted", "observed", "weight"}

    def as_dict(self) -> dict[str, object]:
        return {
            "items": self.items,
            "scored": self.scored,
            "log_loss": self.log_loss,
            "auc": self.auc,
            "escalation_rate": self.escalation_rate,
            "reliability": self.reliability,
        }


def default_escalates(
    result: scoring.ScoreResult, trust_threshold: int = 70, probability_threshold: float = 0.6
) -> bool:
    """DESIGN §8 with the default escalation policy: trust < 70 or P > 0.6 goes to review (so does no score)."""
    if result.trust_score is None or result.manipulation_probability is None:
        return True
    return result.trust_score < trust_threshold or result.manipulation_probability > probability_threshold


def weighted_auc(pairs: Sequence[tuple[float, int, float]]) -> float | None:
    """(prediction, label, weight) -> weighted Mann-Whitney AUC; None without both classes."""
    ordered = sorted(pairs, key=lambda p: p[0])
    positive_total = sum(w for _, y, w in ordered if y == 1)
    negative_total = sum(w for _, y, w in ordered if y == 0)
    if positive_total <= 0 or negative_total <= 0:
        return None
    area = 0.0
    negatives_below = 0.0
    i = 0
    while i < len(ordered):
        j = i
        tie_pos = tie_neg = 0.0
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            if ordered[j][1] == 1:
                tie_pos += ordered[j][2]
            else:
                tie_neg += ordered[j][2]
            j += 1
        area += tie_pos * (negatives_below + tie_neg / 2.0)
        negatives_below += tie_neg
        i = j
    return round(area / (positive_total * negative_total), 4)


def reliability_bins(pairs: Sequence[tuple[float, int, float]], bins: int = BINS) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, y, w) for p, y, w in pairs if low <= p < high or (b == bins - 1 and p == 1.0)]
        weight = sum(w for _, _, w in inside)
        if weight <= 0:
            continue
        rows.append(
            {
                "predicted": round(sum(p * w for p, _, w in inside) / weight, 4),
                "observed": round(sum(y * w for _, y, w in inside) / weight, 4),
                "weight": round(weight, 3),
            }
        )
    return rows


def evaluate(
    samples: Sequence[Labelled],
    policy: scoring.Policy,
    escalates: Callable[[scoring.ScoreResult], bool] = default_escalates,
) -> Metrics:
    pairs: list[tuple[float, int, float]] = []
    escalated = 0.0
    total_weight = 0.0
    loss = 0.0
    for sample in samples:
        result = scoring.score(sample.evidence, policy)
        total_weight += sample.weight
        if escalates(result):
            escalated += sample.weight
        p = result.manipulation_probability
        if p is None:
            continue
        pairs.append((float(p), sample.label, sample.weight))
        clipped = min(max(float(p), 1e-6), 1 - 1e-6)
        loss -= sample.weight * (math.log(clipped) if sample.label else math.log(1 - clipped))
    scored_weight = sum(w for _, _, w in pairs)
    return Metrics(
        items=len(samples),
        scored=len(pairs),
        log_loss=round(loss / scored_weight, 4) if scored_weight else None,
        auc=weighted_auc(pairs),
        escalation_rate=round(escalated / total_weight, 4) if total_weight else None,
        reliability=reliability_bins(pairs),
    )


# --- the reliability diagram ----------------------------------------------------------------------------------
SIZE = 420
MARGIN = 48
COLOURS = {"active": (31, 119, 180), "proposed": (230, 110, 20)}


def reliability_png(curves: dict[str, list[dict[str, float]]], *, title: str = "Reliability") -> bytes:
    """A reliability diagram: the diagonal, then one line with dots (dot area ~ bin weight) per policy."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(image)
    plot = SIZE - 2 * MARGIN

    def xy(px: float, py: float) -> tuple[float, float]:
        return MARGIN + px * plot, SIZE - MARGIN - py * plot

    draw.rectangle([xy(0, 1), xy(1, 0)], outline=(120, 120, 120))
    for tick in range(0, 11, 2):
        value = tick / 10
        draw.line([xy(value, 0), (xy(value, 0)[0], xy(value, 0)[1] + 4)], fill=(120, 120, 120))
        draw.text((xy(value, 0)[0] - 8, xy(value, 0)[1] + 6), f"{value:.1f}", fill=(60, 60, 60))
        draw.line([xy(0, value), (xy(0, value)[0] - 4, xy(0, value)[1])], fill=(120, 120, 120))
        draw.text((4, xy(0, value)[1] - 6), f"{value:.1f}", fill=(60, 60, 60))
    draw.line([xy(0, 0), xy(1, 1)], fill=(180, 180, 180), width=1)
    draw.text((MARGIN, 10), title, fill=(0, 0, 0))
    draw.text((SIZE // 2 - 60, SIZE - 18), "predicted P(manipulated)", fill=(60, 60, 60))
    draw.text((4, 24), "observed share manipulated", fill=(60, 60, 60))
    heaviest = max((row["weight"] for rows in curves.values() for row in rows), default=1.0) or 1.0
    for index, (name, rows) in enumerate(curves.items()):
        colour = COLOURS.get(name, (90, 90, 90))
        points = [xy(row["predicted"], row["observed"]) for row in rows]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for row, (px, py) in zip(rows, points, strict=True):
            radius = 2 + 5 * math.sqrt(row["weight"] / heaviest)
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=colour)
        draw.rectangle([SIZE - 130, 34 + 16 * index, SIZE - 120, 44 + 16 * index], fill=colour)
        draw.text((SIZE - 114, 32 + 16 * index), name, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()
