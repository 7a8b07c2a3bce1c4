"""Evaluation on a user's own labelled media (`manage.py evaluate_detectors --corpus DIR`, docs/analysis.md).

Labels come from `DIR/labels.csv` when present, otherwise from the first folder under DIR:

    labels.csv   path,label,subtype,split      path relative to DIR; label authentic|edited|manipulated|generated;
                                                subtype optional free text (camera, copy_move, splice, gan, ...);
                                                split optional tune|eval (`--split eval` keeps one of them)
    folders      DIR/authentic/..., DIR/edited/..., DIR/manipulated/..., DIR/generated/... (any depth)

Every file runs through the worker's own code: the registered detectors under their time budgets
(`analysis.pipeline.run_detectors`), the detector context from the database (hash banks, C2PA anchors), the
active scoring policy (`analysis.scoring`), and the active escalation policy through the `escalate` callable the
caller passes (the review app's rules; analysis cannot import review). Files Hlekkr would refuse at upload
(type not accepted) are skipped and counted.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from analysis import scoring
from analysis.detectors.base import Detector, DetectorContext, MediaInput
from analysis.evaluation import COLOURS, auc, roc_curve, roc_png, tpr_at_fpr
from analysis.pipeline import DetectorRun, run_detectors, score_runs
from hlekkr.exceptions import HlekkrError
from media.validation import sniff

LABELS = ("authentic", "edited", "manipulated", "generated")
POSITIVE_CLASSES = ("edited", "manipulated", "generated")
NOTHING_FOUND_VERDICTS = (scoring.LIKELY_AUTHENTIC, scoring.NO_MANIPULATION_FOUND)
SPLITS = ("tune", "eval")
SNIFF_BYTES = 8192

# (escalated, reviewers_required, qa_sample) for one completed-analysis payload.
Escalate = Callable[[dict[str, Any]], tuple[bool, int, bool]]


class CorpusError(ValueError):
    """The corpus cannot be read: no labels, a bad labels.csv row, an empty selection."""


@dataclass(frozen=True)
class CorpusItem:
    path: Path
    relative: str
    label: str
    subtype: str = ""
    split: str = ""


@dataclass
class CorpusOutcome:
    item: CorpusItem
    kind: str
    probability: float | None
    trust: int | None
    verdict: str
    confidence: float
    escalated: bool
    reviewers: int
    qa_sample: bool
    detector_scores: dict[str, float | None] = field(default_factory=dict)
    detector_ms: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# --- reading the corpus ---------------------------------------------------------------------------------------
def load_items(root: Path, *, split: str | None = None) -> list[CorpusItem]:
    """The labelled files of a corpus folder (see the module docstring), optionally one split only."""
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder")
    labels_csv = root / "labels.csv"
    items = list(_from_csv(root, labels_csv)) if labels_csv.is_file() else list(_from_folders(root))
    if split:
        if split not in SPLITS:
            raise CorpusError(f"--split must be one of {', '.join(SPLITS)}")
        items = [i for i in items if i.split == split]
    if not items:
        raise CorpusError(
            f"no labelled files in {root}: add labels.csv (path,label,subtype,split) or folders named "
            f"{', '.join(LABELS)}" + (f" (split {split})" if split else "")
        )
    return items


def _from_csv(root: Path, labels_csv: Path) -> Iterator[CorpusItem]:
    with labels_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise CorpusError(f"labels.csv lacks the column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            relative = (row.get("path") or "").strip()
            label = (row.get("label") or "").strip().lower()
            split = (row.get("split") or "").strip().lower()
            if label not in LABELS:
                raise CorpusError(f"labels.csv line {line}: label {label!r} is not one of {', '.join(LABELS)}")
            if split and split not in SPLITS:
                raise CorpusError(f"labels.csv line {line}: split {split!r} is not one of {', '.join(SPLITS)}")
            path = (root / relative).resolve()
            if not relative or root.resolve() not in path.parents or not path.is_file():
                raise CorpusError(f"labels.csv line {line}: {relative!r} is not a file inside the corpus")
            yield CorpusItem(path, relative, label, (row.get("subtype") or "").strip(), split)


def _from_folders(root: Path) -> Iterator[CorpusItem]:
    for label in LABELS:
        folder = root / label
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            subtype = path.parent.name if path.parent != folder else ""
            yield CorpusItem(path, str(path.relative_to(root)), label, subtype)


# --- running --------------------------------------------------------------------------------------------------
def sniff_file(path: Path) -> tuple[str, str] | None:
    """(MIME, kind) as the upload validator sniffs them, or None for a type Hlekkr does not accept."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    try:
        return sniff(head)
    except HlekkrError:
        return None


def evaluate_file(
    item: CorpusItem,
    mime: str,
    kind: str,
    *,
    detectors: list[Detector],
    context: DetectorContext,
    policy: scoring.Policy,
    escalate: Escalate,
    budget_scale: float = 1.0,
) -> CorpusOutcome:
    started = time.perf_counter()
    media = MediaInput(
        path=item.path,
        kind=kind,  # type: ignore[arg-type]  # sniff() only returns image, video or audio
        mime=mime,
        size=item.path.stat().st_size,
        filename=item.path.name,
    )
    runs: list[DetectorRun] = list(run_detectors(detectors, media, context, budget_scale=budget_scale))
    result = score_runs(runs, policy)
    payload = completed_payload(item.relative, kind, runs, result)
    escalated, reviewers, qa = escalate(payload)
    return CorpusOutcome(
        item=item,
        kind=kind,
        probability=result.manipulation_probability,
        trust=result.trust_score,
        verdict=result.verdict,
        confidence=result.confidence,
        escalated=escalated,
        reviewers=reviewers,
        qa_sample=qa,
        detector_scores={r.name: r.output.probability if r.output.status == "ok" else None for r in runs},
        detector_ms={r.name: r.duration_ms for r in runs},
        seconds=time.perf_counter() - started,
    )


def completed_payload(name: str, kind: str, runs: list[DetectorRun], result: scoring.ScoreResult) -> dict[str, Any]:
    """The `analysis.completed` payload fields escalation reads (analysis.services.completed_payload)."""
    faces = 0
    for run in runs:
        count = run.output.evidence.get("face_count") if run.output.status == "ok" else None
        if isinstance(count, int):
            faces = max(faces, count)
    return {
        "analysis_id": f"corpus:{name}",  # the QA sample is a hash of this: stable across runs
        "kind": kind,
        "trust_score": result.trust_score,
        "verdict": result.verdict,
        "manipulation_probability": result.manipulation_probability,
        "confidence": result.confidence,
        "decisive": sorted({str(d) for r in runs for d in r.output.decisive}),
        "detector_scores": {
            r.name: r.output.probability for r in runs if r.output.status == "ok" and r.output.probability is not None
        },
        "evidence_balance": result.breakdown.get("evidence_balance"),
        "faces": faces,
        "review_requested": False,
        "priority": "normal",
    }


def run_corpus(
    items: list[CorpusItem],
    *,
    detectors: list[Detector],
    context: DetectorContext,
    policy: scoring.Policy,
    escalate: Escalate,
    budget_scale: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[CorpusOutcome], list[str]]:
    """Outcomes of every accepted file, and the relative paths of files skipped as not accepted."""
    outcomes: list[CorpusOutcome] = []
    skipped: list[str] = []
    started = time.perf_counter()
    for index, item in enumerate(items, start=1):
        sniffed = sniff_file(item.path)
        if sniffed is None:
            skipped.append(item.relative)
            continue
        mime, kind = sniffed
        outcomes.append(
            evaluate_file(
                item,
                mime,
                kind,
                detectors=detectors,
                context=context,
                policy=policy,
                escalate=escalate,
                budget_scale=budget_scale,
            )
        )
        if progress and index % 25 == 0:
            progress(f"  {index}/{len(items)} files, {time.perf_counter() - started:.0f} s")
    return outcomes, skipped


# --- metrics --------------------------------------------------------------------------------------------------
def _p(outcome: CorpusOutcome) -> float:
    # Inconclusive items have no probability: the middle, as the score gives no information.
    return 0.5 if outcome.probability is None else outcome.probability


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def _separation(members: list[CorpusOutcome], authentic: list[CorpusOutcome]) -> dict[str, Any]:
    """Trust-score and per-detector AUC / TPR at 5 % FPR of `members` against the authentic items."""
    pos, neg = [_p(o) for o in members], [_p(o) for o in authentic]
    detectors: dict[str, dict[str, float | None]] = {}
    for name in sorted({n for o in members + authentic for n in o.detector_scores}):
        dpos = [o.detector_scores.get(name) for o in members]
        dneg = [o.detector_scores.get(name) for o in authentic]
        if all(v is None for v in dpos + dneg):
            continue  # never scored here (wrong kind, abstained throughout)
        # A detector that did not score an item gives no information about it: the midpoint 0.5.
        fpos = [0.5 if v is None else float(v) for v in dpos]
        fneg = [0.5 if v is None else float(v) for v in dneg]
        detectors[name] = {"auc": _round(auc(fpos, fneg)), "tpr_at_5pct_fpr": _round(tpr_at_fpr(fpos, fneg))}
    return {
        "n": len(members),
        "trust_score": {"auc": _round(auc(pos, neg)), "tpr_at_5pct_fpr": _round(tpr_at_fpr(pos, neg))},
        "detectors": detectors,
    }


def report(outcomes: list[CorpusOutcome], meta: dict[str, Any]) -> dict[str, Any]:
    by_label: dict[str, list[CorpusOutcome]] = {label: [] for label in LABELS}
    for outcome in outcomes:
        by_label[outcome.item.label].append(outcome)
    authentic = by_label["authentic"]
    classes = {label: _separation(by_label[label], authentic) for label in POSITIVE_CLASSES if by_label[label]}
    subtypes: dict[str, Any] = {}
    for outcome in outcomes:
        if outcome.item.subtype and outcome.item.label != "authentic":
            subtypes.setdefault(f"{outcome.item.label}/{outcome.item.subtype}", []).append(outcome)
    verdicts = (scoring.LIKELY_AUTHENTIC, scoring.NO_MANIPULATION_FOUND, scoring.SUSPICIOUS,
                scoring.LIKELY_MANIPULATED, scoring.INCONCLUSIVE)  # fmt: skip
    confusion = {
        label: {v: sum(o.verdict == v for o in by_label[label]) for v in verdicts}
        for label in LABELS
        if by_label[label]
    }
    review = {
        label: {
            "n": len(group),
            "escalation_rate": _rate(sum(o.escalated for o in group), len(group)),
            "escalation_rate_without_qa_sample": _rate(sum(o.escalated and not o.qa_sample for o in group), len(group)),
            "two_reviewer_rate": _rate(sum(o.reviewers >= 2 for o in group), len(group)),
        }
        for label, group in by_label.items()
        if group
    }
    generated = by_label["generated"]
    timing: dict[str, dict[str, float]] = {}
    for name in sorted({n for o in outcomes for n in o.detector_ms}):
        values = sorted(o.detector_ms[name] for o in outcomes if name in o.detector_ms)
        timing[name] = {"mean_ms": round(sum(values) / len(values), 1), "p95_ms": float(_percentile(values, 0.95))}
    return {
        "meta": meta,
        "counts": {label: len(group) for label, group in by_label.items()},
        "classes": classes,
        "subtypes": {name: _separation(group, authentic) for name, group in sorted(subtypes.items())},
        "confusion": {"rows": "label", "columns": "verdict", "matrix": confusion},
        "review": review,
        "targets": {
            "authentic_called_manipulated_rate": _rate(
                sum(o.verdict == scoring.LIKELY_MANIPULATED for o in authentic), len(authentic)
            ),
            "authentic_escalation_rate": review.get("authentic", {}).get("escalation_rate"),
            "authentic_two_reviewer_rate": review.get("authentic", {}).get("two_reviewer_rate"),
            "generated_outside_authentic_and_nothing_found_rate": _rate(
                sum(o.verdict not in NOTHING_FOUND_VERDICTS for o in generated), len(generated)
            ),
        },
        "reliability": reliability_bins(outcomes),
        "detector_time": timing,
        "items": [
            {
                "path": o.item.relative,
                "label": o.item.label,
                "subtype": o.item.subtype or None,
                "split": o.item.split or None,
                "kind": o.kind,
                "probability": o.probability,
                "trust": o.trust,
                "verdict": o.verdict,
                "confidence": o.confidence,
                "escalated": o.escalated,
                "reviewers": o.reviewers if o.escalated else 0,
                "detector_scores": o.detector_scores,
                "seconds": round(o.seconds, 3),
            }
            for o in outcomes
        ],
        "rocs": {
            label: roc_curve([_p(o) for o in by_label[label]], [_p(o) for o in authentic])
            for label in POSITIVE_CLASSES
            if by_label[label] and authentic
        },
    }


def reliability_bins(outcomes: list[CorpusOutcome], bins: int = 10) -> list[dict[str, Any]]:
    """Predicted P against the observed share of manipulated or generated items, per tenth of P. Edited items
    are left out: P is the probability of manipulation or generation, and an edit is neither."""
    rows = []
    judged = [o for o in outcomes if o.probability is not None and o.item.label != "edited"]
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [o for o in judged if low <= o.probability < high or (b == bins - 1 and o.probability == 1.0)]  # type: ignore[operator]
        if not members:
            continue
        rows.append(
            {
                "bin": [round(low, 2), round(high, 2)],
                "n": len(members),
                "mean_probability": round(sum(o.probability or 0.0 for o in members) / len(members), 4),
                "observed_positive_rate": round(
                    sum(o.item.label in ("manipulated", "generated") for o in members) / len(members), 4
                ),
            }
        )
    return rows


def _percentile(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))] if values else 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- output ---------------------------------------------------------------------------------------------------
def reliability_png(rows: list[dict[str, Any]], size: int = 520) -> bytes:
    """A reliability diagram drawn with Pillow: observed positive rate per bin against the mean predicted P."""
    margin = 60
    plot = size - 2 * margin
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def xy(x: float, y: float) -> tuple[float, float]:
        return margin + x * plot, margin + (1 - y) * plot

    draw.rectangle([margin, margin, margin + plot, margin + plot], outline="black")
    draw.line([xy(0, 0), xy(1, 1)], fill=(200, 200, 200))
    for tick in range(0, 11, 2):
        v = tick / 10
        x, y = xy(v, v)
        draw.text((x - 8, margin + plot + 8), f"{v:.1f}", fill="black")
        draw.text((margin - 30, y - 6), f"{v:.1f}", fill="black")
    draw.text((margin, 20), "Reliability: predicted P vs observed manipulated/generated share", fill="black")
    draw.text((margin + plot // 2 - 60, size - 25), "mean predicted P", fill="black")
    points = [xy(r["mean_probability"], r["observed_positive_rate"]) for r in rows]
    if len(points) > 1:
        draw.line(points, fill=COLOURS[0], width=2)
    for (x, y), row in zip(points, rows, strict=True):
        radius = 3 + min(8, int(math.log2(row["n"] + 1)))
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=COLOURS[0], width=2)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_outputs(result: dict[str, Any], folder: Path) -> dict[str, Path]:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": folder / "corpus-report.json",
        "roc": folder / "roc.png",
        "reliability": folder / "reliability.png",
    }
    aucs = {label: c["trust_score"]["auc"] for label, c in result["classes"].items()}
    paths["roc"].write_bytes(roc_png(result["rocs"], aucs, title="ROC: trust score vs authentic items"))
    paths["reliability"].write_bytes(reliability_png(result["reliability"]))
    paths["report"].write_text(json.dumps(result, indent=2))
    return paths


def summary_lines(result: dict[str, Any]) -> list[str]:
    meta, targets = result["meta"], result["targets"]
    lines = [
        f"{meta['files']} files ({meta['skipped']} skipped as not accepted) from {meta['corpus']}"
        + (f", split {meta['split']}" if meta.get("split") else "")
        + f"; policy v{meta['policy_version']}; {meta['seconds']} s",
        "counts: " + ", ".join(f"{k} {v}" for k, v in result["counts"].items() if v),
        f"{'class':<28} {'n':>4} {'AUC':>6} {'TPR@5%FPR':>10}   (trust score vs authentic)",
    ]
    for name, c in [*result["classes"].items(), *result["subtypes"].items()]:
        t = c["trust_score"]
        lines.append(f"{name:<28} {c['n']:>4} {_fmt(t['auc']):>6} {_fmt(t['tpr_at_5pct_fpr']):>10}")
    lines.append("per detector AUC / TPR@5%FPR:")
    for name, c in result["classes"].items():
        parts = [f"{d} {_fmt(v['auc'])}/{_fmt(v['tpr_at_5pct_fpr'])}" for d, v in c["detectors"].items()]
        lines.append(f"  {name}: " + ", ".join(parts))
    lines.append("verdicts (rows: label):")
    for label, row in result["confusion"]["matrix"].items():
        lines.append(f"  {label:<12} " + ", ".join(f"{v} {n}" for v, n in row.items() if n))
    lines.append("review under the active escalation policy:")
    for label, r in result["review"].items():
        lines.append(
            f"  {label:<12} escalated {_pct(r['escalation_rate'])} (without QA sample "
            f"{_pct(r['escalation_rate_without_qa_sample'])}), two reviewers {_pct(r['two_reviewer_rate'])}"
        )
    lines.append(
        f"targets: authentic called manipulated {_pct(targets['authentic_called_manipulated_rate'])} (<= 2 %), "
        f"escalated {_pct(targets['authentic_escalation_rate'])} (<= 10 %), two reviewers "
        f"{_pct(targets['authentic_two_reviewer_rate'])} (<= 3 %), generated outside authentic/nothing-found "
        f"{_pct(targets['generated_outside_authentic_and_nothing_found_rate'])}"
    )
    lines.append(
        "detector time (mean/p95 ms): "
        + ", ".join(f"{n} {t['mean_ms']:.0f}/{t['p95_ms']:.0f}" for n, t in result["detector_time"].items())
    )
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"
