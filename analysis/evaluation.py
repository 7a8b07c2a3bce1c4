"""A labelled benchmark of the local pipeline (`manage.py evaluate_detectors`, docs/analysis.md "Evaluation").

Real photographs from scikit-image's bundled samples (the colour photos only) are cropped into base images; each
base yields an authentic JPEG, benign variants (resized, re-saved) and manipulations with known ground truth:

    manipulated: splice (region from another photo), copy_move (region duplicated inside the image),
                 banked_fake (a composite whose PDQ hash is in a known-fake bank, after resize/recompress/crop)
    generated:   generator_metadata (Stable Diffusion `parameters` PNG text), c2pa_ai (C2PA manifest declaring
                 trainedAlgorithmicMedia, signed by a CA configured as trust anchor)
    edited:      double_jpeg (first compressed at q 60/70/80, then 90), resampling (1.5x bicubic upscale)

Every item runs through the same code as the worker (`analysis.pipeline.run_detectors` + `analysis.scoring`),
without Celery or storage. For each class the scores of its items are ranked against the authentic items: AUC
and the true-positive rate at <= 5 % false-positive rate. The benign variants answer a different question - do
resized or re-saved camera photos land in `likely_manipulated`? - and are reported as a false-alarm rate.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from analysis import scoring
from analysis.c2pa_signing import ai_created_actions, make_test_ca, manifest_definition, sign_bytes
from analysis.detectors import registry
from analysis.detectors.base import Detector, DetectorConfig, DetectorContext, HashBankEntry, MediaInput
from analysis.detectors.known_content import pdq_hash
from analysis.pipeline import DetectorRun, run_detectors, score_runs

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "hubble_deep_field", "retina")
QUICK_PHOTOS = ("astronaut", "coffee")
CLASSES: dict[str, str] = {
    "splice": "manipulated",
    "copy_move": "manipulated",
    "banked_fake": "manipulated",
    "generator_metadata": "generated",
    "c2pa_ai": "generated",
    "double_jpeg": "edited",
    "resampling": "edited",
}
BENIGN = ("resized", "resaved")
SD_PARAMETERS = (
    "a photograph, highly detailed\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, "
    "Seed: {seed}, Size: {w}x{h}, Model: sd_xl_base_1.0"
)


@dataclass
class Item:
    name: str
    group: str  # a class in CLASSES, "authentic", or a benign variant
    data: bytes
    mime: str
    label: int  # 1 = manipulated/generated/edited, 0 = authentic or benign


@dataclass
class Outcome:
    item: Item
    probability: float | None
    trust: int | None
    verdict: str
    detector_scores: dict[str, float | None] = field(default_factory=dict)
    seconds: float = 0.0


# --- building the benchmark ----------------------------------------------------------------------------------
def _photo(name: str) -> list[np.ndarray]:
    from skimage import data

    value = getattr(data, name)()
    arrays = list(value) if isinstance(value, tuple) else [value]
    return [np.ascontiguousarray(a[..., :3]) for a in arrays]


def base_images(photos: tuple[str, ...], side: int) -> Iterator[tuple[str, np.ndarray]]:
    """Centre crops (and for large photos a second, non-overlapping one) of at most `side` pixels."""
    for name in photos:
        for index, array in enumerate(_photo(name)[:2]):
            h, w = array.shape[:2]
            crops = [((h - min(h, side)) // 2, (w - min(w, side)) // 2)]
            if h >= 2 * side or w >= 2 * side:
                crops = [(0, 0), (h - side, w - side)] if h >= 2 * side else [(0, 0), (0, w - side)]
            for k, (y, x) in enumerate(crops):
                yield f"{name}{index or ''}-{k}", array[y : y + min(h, side), x : x + min(w, side)].copy()


def jpeg(array: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def png(array: np.ndarray, text: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def splice(base: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paste a quarter-side block of a differently compressed donor photo into the base."""
    h, w = base.shape[:2]
    size = max(32, min(h, w) // 4)
    donor = decode(jpeg(donor, 60))
    dy = int(rng.integers(0, donor.shape[0] - size))
    dx = int(rng.integers(0, donor.shape[1] - size))
    y = int(rng.integers(0, h - size))
    x = int(rng.integers(0, w - size))
    out = base.copy()
    out[y : y + size, x : x + size] = donor[dy : dy + size, dx : dx + size]
    return out


def copy_move(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Duplicate a fifth-side block of the image onto a non-overlapping place in it."""
    h, w = base.shape[:2]
    size = max(32, min(h, w) // 5)
    out = base.copy()
    for _ in range(50):
        sy, sx = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
        ty, tx = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
        if abs(sy - ty) > size or abs(sx - tx) > size:
            out[ty : ty + size, tx : tx + size] = base[sy : sy + size, sx : sx + size]
            return out
    raise ValueError("image too small for a copy-move")


def composite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A fake for the bank: the left half of one photo joined to the right half of another."""
    h = min(a.shape[0], b.shape[0])
    w = min(a.shape[1], b.shape[1])
    out = a[:h, :w].copy()
    out[:, w // 2 :] = b[:h, w // 2 : w]
    return out


def transform_for_bank(array: np.ndarray, which: int) -> bytes:
    """What happens to a viral fake on its way back to us: resized, recompressed, or cropped."""
    image = Image.fromarray(array)
    if which == 0:
        image = image.resize((image.width * 7 // 10, image.height * 7 // 10), Image.Resampling.BILINEAR)
        return jpeg(np.asarray(image), 85)
    if which == 1:
        return jpeg(decode(jpeg(array, 90)), 65)
    w, h = image.size
    return jpeg(np.asarray(image.crop((w // 20, h // 20, w - w // 20, h - h // 20))), 90)


def build_items(photos: tuple[str, ...], side: int, seed: int = 7) -> tuple[list[Item], list[HashBankEntry], str]:
    """The benchmark items, the known-fake bank they are matched against, and the C2PA trust anchor PEM."""

    rng = np.random.default_rng(seed)
    bases = list(base_images(photos, side))
    ca = make_test_ca("Hlekkr Evaluation CA")
    items: list[Item] = []
    bank: list[HashBankEntry] = []
    for i, (name, base) in enumerate(bases):
        donor_name, donor = bases[(i + 1) % len(bases)]
        authentic = jpeg(base, 90)
        camera = decode(authentic)  # what a camera JPEG decodes to: the starting point of every edit
        h, w = base.shape[:2]
        add = items.append
        add(Item(f"{name}/authentic", "authentic", authentic, "image/jpeg", 0))
        small = Image.fromarray(camera).resize((w * 3 // 5, h * 3 // 5), Image.Resampling.LANCZOS)
        add(Item(f"{name}/resized", "resized", jpeg(np.asarray(small), 88), "image/jpeg", 0))
        add(Item(f"{name}/resaved", "resaved", jpeg(camera, 80), "image/jpeg", 0))
        add(Item(f"{name}/splice", "splice", jpeg(splice(camera, donor, rng), 90), "image/jpeg", 1))
        add(Item(f"{name}/copy_move", "copy_move", jpeg(copy_move(camera, rng), 90), "image/jpeg", 1))
        first_quality = (60, 70, 80)[i % 3]
        double = jpeg(decode(jpeg(base, first_quality)), 90)
        add(Item(f"{name}/double_jpeg_q{first_quality}", "double_jpeg", double, "image/jpeg", 1))
        big = Image.fromarray(camera).resize((w * 3 // 2, h * 3 // 2), Image.Resampling.BICUBIC)
        add(Item(f"{name}/resampling", "resampling", jpeg(np.asarray(big), 90), "image/jpeg", 1))
        params = SD_PARAMETERS.format(seed=1000 + i, w=w, h=h)
        add(Item(f"{name}/generator_metadata", "generator_metadata", png(base, {"parameters": params}), "image/png", 1))
        manifest = manifest_definition(ai_created_actions(), title=f"{name}.jpg")
        add(Item(f"{name}/c2pa_ai", "c2pa_ai", sign_bytes(authentic, ca, manifest), "image/jpeg", 1))
        fake = composite(camera, decode(jpeg(donor, 85)))
        bank.append(HashBankEntry("evaluation-fakes", "known_fake", pdq_hash(Image.fromarray(fake))[0], name))
        add(Item(f"{name}/banked_fake", "banked_fake", transform_for_bank(fake, i % 3), "image/jpeg", 1))
        del donor_name
    return items, bank, ca.root_pem


# --- running --------------------------------------------------------------------------------------------------
def evaluate_item(
    item: Item, detectors: list[Detector], context: DetectorContext, policy: scoring.Policy, workdir: Path
) -> Outcome:
    started = time.perf_counter()
    path = workdir / "item"
    path.write_bytes(item.data)
    media = MediaInput(path=path, kind="image", mime=item.mime, size=len(item.data), filename=item.name)
    runs: list[DetectorRun] = list(run_detectors(detectors, media, context))
    result = score_runs(runs, policy)
    return Outcome(
        item=item,
        probability=result.manipulation_probability,
        trust=result.trust_score,
        verdict=result.verdict,
        detector_scores={r.name: r.output.probability if r.output.status == "ok" else None for r in runs},
        seconds=time.perf_counter() - started,
    )


def run_benchmark(
    *,
    policy: scoring.Policy,
    quick: bool = False,
    side: int | None = None,
    detectors_factory: Callable[[], list[Detector]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Outcome], dict[str, Any]]:
    photos = QUICK_PHOTOS if quick else PHOTOS
    side = side or (256 if quick else 384)
    items, bank, anchors = build_items(photos, side)
    context = DetectorContext(hash_banks=bank)
    # The evaluation's own CA is the trust anchor: its signed C2PA items must validate as trusted.
    detectors = (
        detectors_factory() if detectors_factory else registry.detectors(DetectorConfig(c2pa_trust_anchors_pem=anchors))
    )
    outcomes = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hlekkr-eval-") as tmp:
        for index, item in enumerate(items, start=1):
            outcomes.append(evaluate_item(item, detectors, context, policy, Path(tmp)))
            if progress and index % 20 == 0:
                progress(f"  {index}/{len(items)} items, {time.perf_counter() - started:.0f} s")
    meta = {
        "photos": list(photos),
        "side": side,
        "items": len(items),
        "bank_size": len(bank),
        "seconds": round(time.perf_counter() - started, 1),
        "policy_version": policy.version,
        "detectors": [d.name for d in detectors],
    }
    return outcomes, meta


# --- metrics --------------------------------------------------------------------------------------------------
def _p(outcome: Outcome) -> float:
    # Inconclusive items have no probability: rank them in the middle, as the score gives no information.
    return 0.5 if outcome.probability is None else outcome.probability


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """Probability that a random positive outranks a random negative (ties count half): Mann-Whitney U / n1 n0."""
    if not positives or not negatives:
        return None
    pos = np.asarray(positives)[:, None]
    neg = np.asarray(negatives)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def roc_curve(positives: list[float], negatives: list[float]) -> list[tuple[float, float]]:
    """(FPR, TPR) points for every threshold, from (0, 0) to (1, 1)."""
    thresholds = sorted(set(positives) | set(negatives), reverse=True)
    points = [(0.0, 0.0)]
    for t in thresholds:
        tpr = sum(p >= t for p in positives) / len(positives)
        fpr = sum(n >= t for n in negatives) / len(negatives)
        points.append((fpr, tpr))
    points.append((1.0, 1.0))
    return points


def tpr_at_fpr(positives: list[float], negatives: list[float], max_fpr: float = 0.05) -> float | None:
    if not positives or not negatives:
        return None
    return max(tpr for fpr, tpr in roc_curve(positives, negatives) if fpr <= max_fpr + 1e-12)


def report(outcomes: list[Outcome], meta: dict[str, Any]) -> dict[str, Any]:
    by_group: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_group.setdefault(outcome.item.group, []).append(outcome)
    negatives = [_p(o) for o in by_group.get("authentic", [])]
    classes: dict[str, Any] = {}
    for name, category in CLASSES.items():
        members = by_group.get(name, [])
        positives = [_p(o) for o in members]
        classes[name] = {
            "category": category,
            "n": len(members),
            "auc": _round(auc(positives, negatives)),
            "tpr_at_5pct_fpr": _round(tpr_at_fpr(positives, negatives)),
            "verdicts": _verdicts(members),
            "detector_auc": _detector_aucs(members, by_group.get("authentic", [])),
        }
    overall_members = [o for g, c in CLASSES.items() if c != "edited" for o in by_group.get(g, [])]
    overall_positives = [_p(o) for o in overall_members]
    benign = [o for g in BENIGN for o in by_group.get(g, [])]
    authentic = by_group.get("authentic", [])
    return {
        "meta": meta,
        "overall": {
            "definition": "manipulated + generated classes vs authentic photos (edited classes reported apart)",
            "n_positive": len(overall_positives),
            "n_negative": len(negatives),
            "auc": _round(auc(overall_positives, negatives)),
            "tpr_at_5pct_fpr": _round(tpr_at_fpr(overall_positives, negatives)),
        },
        "classes": classes,
        "authentic": {"n": len(authentic), "verdicts": _verdicts(authentic)},
        "benign_edits": {
            "n": len(benign),
            "verdicts": _verdicts(benign),
            "false_alarm_rate_likely_manipulated": _round(
                sum(o.verdict == scoring.LIKELY_MANIPULATED for o in benign) / len(benign) if benign else None
            ),
            "suspicious_rate": _round(
                sum(o.verdict == scoring.SUSPICIOUS for o in benign) / len(benign) if benign else None
            ),
        },
        "authentic_false_alarm_rate_likely_manipulated": _round(
            sum(o.verdict == scoring.LIKELY_MANIPULATED for o in authentic) / len(authentic) if authentic else None
        ),
        "items": [
            {
                "name": o.item.name,
                "group": o.item.group,
                "probability": o.probability,
                "trust": o.trust,
                "verdict": o.verdict,
                "detector_scores": o.detector_scores,
                "seconds": round(o.seconds, 3),
            }
            for o in outcomes
        ],
        "rocs": {
            **{
                name: roc_curve([_p(o) for o in by_group.get(name, [])], negatives)
                for name in CLASSES
                if by_group.get(name) and negatives
            },
            **({"overall": roc_curve(overall_positives, negatives)} if overall_positives and negatives else {}),
        },
    }


def _detector_aucs(members: list[Outcome], authentic: list[Outcome]) -> dict[str, float | None]:
    names = sorted({n for o in members + authentic for n in o.detector_scores})
    result: dict[str, float | None] = {}
    for name in names:
        pos = [o.detector_scores.get(name) for o in members]
        neg = [o.detector_scores.get(name) for o in authentic]
        if all(v is None for v in pos + neg):
            continue
        # A detector that did not score gives no information: 0.5, the midpoint, as for the combined score.
        result[name] = _round(auc([0.5 if v is None else v for v in pos], [0.5 if v is None else v for v in neg]))
    return result


def _verdicts(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.verdict] = counts.get(outcome.verdict, 0) + 1
    return counts


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- output ---------------------------------------------------------------------------------------------------
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]  # fmt: skip


def roc_png(
    rocs: dict[str, list[tuple[float, float]]],
    aucs: dict[str, float | None],
    size: int = 640,
    title: str = "ROC: manipulation probability vs authentic photos",
) -> bytes:
    """A ROC plot drawn with Pillow (matplotlib is not a runtime dependency)."""
    margin, legend_h = 60, 18 * (len(rocs) + 1)
    image = Image.new("RGB", (size, size + legend_h), "white")
    draw = ImageDraw.Draw(image)
    plot = size - 2 * margin

    def xy(fpr: float, tpr: float) -> tuple[float, float]:
        return margin + fpr * plot, margin + (1 - tpr) * plot

    draw.rectangle([margin, margin, margin + plot, margin + plot], outline="black")
    for tick in range(0, 11, 2):
        v = tick / 10
        x, y = xy(v, v)
        draw.line([x, margin + plot, x, margin + plot + 5], fill="black")
        draw.text((x - 8, margin + plot + 8), f"{v:.1f}", fill="black")
        draw.line([margin - 5, y, margin, y], fill="black")
        draw.text((margin - 30, y - 6), f"{v:.1f}", fill="black")
    draw.line([xy(0, 0), xy(1, 1)], fill=(200, 200, 200))
    x5, _ = xy(0.05, 0)
    draw.line([x5, margin, x5, margin + plot], fill=(230, 200, 200))
    draw.text((margin, 20), title, fill="black")
    draw.text((margin + plot // 2 - 60, size - 25), "false-positive rate", fill="black")
    draw.text((5, margin - 20), "true-positive rate", fill="black")
    for index, (name, points) in enumerate(rocs.items()):
        colour = (0, 0, 0) if name == "overall" else COLOURS[index % len(COLOURS)]
        draw.line([xy(*p) for p in points], fill=colour, width=4 if name == "overall" else 2)
        label = f"{name}  AUC {aucs.get(name)}"
        ly = size + 4 + 18 * index
        draw.rectangle([margin, ly + 3, margin + 20, ly + 9], fill=colour)
        draw.text((margin + 28, ly), label, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_outputs(result: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    aucs = {name: c["auc"] for name, c in result["classes"].items()}
    aucs["overall"] = result["overall"]["auc"]
    png_path = folder / "roc.png"
    png_path.write_bytes(roc_png(result["rocs"], aucs))
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(result, indent=2))
    return json_path, png_path


def summary_lines(result: dict[str, Any]) -> list[str]:
    meta = result["meta"]
    lines = [
        f"{meta['items']} items from {len(meta['photos'])} photos ({meta['side']} px crops), policy v"
        f"{meta['policy_version']}, {meta['seconds']} s",
        f"{'class':<20} {'category':<12} {'n':>3} {'AUC':>6} {'TPR@5%FPR':>10}  verdicts",
    ]
    for name, c in result["classes"].items():
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(c["verdicts"].items()))
        figures = f"{_fmt(c['auc']):>6} {_fmt(c['tpr_at_5pct_fpr']):>10}"
        lines.append(f"{name:<20} {c['category']:<12} {c['n']:>3} {figures}  {verdicts}")
    o = result["overall"]
    lines.append(
        f"{'overall':<20} {'manip+gen':<12} {o['n_positive']:>3} {_fmt(o['auc']):>6} {_fmt(o['tpr_at_5pct_fpr']):>10}"
    )
    b = result["benign_edits"]
    lines.append(
        f"authentic photos: {result['authentic']['verdicts']}; likely_manipulated rate "
        f"{result['authentic_false_alarm_rate_likely_manipulated']}"
    )
    lines.append(
        f"resized/re-saved photos ({b['n']}): {b['verdicts']}; likely_manipulated rate "
        f"{b['false_alarm_rate_likely_manipulated']}, suspicious rate {b['suspicious_rate']}"
    )
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
