"""Where the localising detectors point: their heatmaps against the forgery corpus's true masks.

    python bench/localisation.py DIR [--split tune] [--detectors jpeg_local,double_jpeg] [--json out.json]

`bench/forgery_corpus.py` writes, beside `labels.csv`, a `truth.csv` (how each item was saved last and at which
quality, the paste's own quality and 8x8 offset for splices) and a soft mask per edit (`masks/...png`). This runs
each localising detector over the manipulated items of a split (in-process, as `bench/detector_auc.py` does) and
compares its heatmap artifact with the mask, both brought to 128 px on the long side:

* **pixel AUC**: do pixels inside the paste (mask > 0.5) rank above pixels clearly outside it (mask < 0.05)?
  0.5 is chance; an abstention or a missing heatmap counts 0.5.
* **peak hit**: is the heatmap's hottest pixel inside the paste (mask > 0.5, grown by 8 % of the long side)?

Splices are also split by what a last JPEG left of the paste's own compression: the paste compressed coarser
than the last save (its lattice can survive) or not (re-quantised onto the host's table), which is where the
JPEG detectors' limits are. No score here is a trust score: `manage.py evaluate_detectors` gives those.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # as hlekkr/celery.py sets for every worker, before numpy loads

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `analysis` importable

from analysis.detectors.base import DetectorContext, MediaInput  # noqa: E402
from bench.detector_auc import MIMES, build_detector  # noqa: E402
from bench.forgery_corpus import iter_labels  # noqa: E402

LOCALISING = ("jpeg_local", "double_jpeg", "noise_residual", "ela", "copy_move")
SIDE = 128


def rank_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Mann-Whitney AUC by ranks (ties count half), for pixel counts where the pairwise form is too large."""
    values = np.concatenate([positives, negatives])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    # average the ranks of ties
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends, strict=True):
        if e - s > 1:
            ranks[order[s:e]] = (s + 1 + e) / 2
    n1, n0 = len(positives), len(negatives)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def heat_values(data: bytes) -> np.ndarray:
    """A heatmap PNG's values: the palette index of the inferno maps (0 cold .. 255 hot), or grey levels."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode == "P":
            return np.asarray(image, np.float32)
        return np.asarray(image.convert("L"), np.float32)


def small(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return np.asarray(cv2.resize(a.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA))


def localise(heat: np.ndarray | None, mask: np.ndarray) -> tuple[float, bool]:
    h, w = mask.shape
    f = SIDE / max(h, w)
    shape = (max(8, round(h * f)), max(8, round(w * f)))
    m = small(mask, shape)
    if heat is None:
        return 0.5, False
    v = small(heat, shape)
    inside, outside = v[m > 0.5], v[m < 0.05]
    if inside.size == 0 or outside.size == 0:
        return 0.5, False
    pixel_auc = rank_auc(inside, outside)
    if float(v.max()) <= float(v.min()):
        return pixel_auc, False  # a flat map points nowhere
    import cv2

    grow = max(1, round(0.08 * max(shape)))
    near = cv2.dilate((m > 0.5).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    y, x = np.unravel_index(int(np.argmax(v)), v.shape)
    return pixel_auc, bool(near[y, x])


def case(record: dict[str, str], subtype: str) -> str:
    """The save chain, and for splices saved through JPEG whether the paste was compressed coarser than that."""
    save = record.get("save", "")
    if subtype != "splice" or save not in ("jpeg", "jpeg_png") or not record.get("donor_quality"):
        return save
    coarser = int(record["donor_quality"]) < int(record["quality"])
    return f"{save}, paste {'coarser' if coarser else 'finer or equal'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--split", default="tune", choices=["tune", "eval", "all"])
    parser.add_argument("--detectors", default=",".join(LOCALISING))
    parser.add_argument("--json", type=Path, default=None, help="write every item's figures here")
    args = parser.parse_args(argv)
    truth_file = args.corpus / "truth.csv"
    if not truth_file.is_file():
        raise SystemExit(f"{truth_file} is missing: rebuild the corpus with bench/forgery_corpus.py")
    with truth_file.open(newline="") as handle:
        truth = {r["path"]: r for r in csv.DictReader(handle)}

    import cv2

    cv2.setNumThreads(1)
    detectors = [build_detector(name, []) for name in args.detectors.split(",") if name]
    rows = [
        r
        for r in iter_labels(args.corpus)
        if (args.split == "all" or r.split == args.split) and truth.get(r.path, {}).get("mask")
    ]
    items: list[dict[str, Any]] = []
    for row in rows:
        record = truth[row.path]
        with Image.open(args.corpus / record["mask"]) as image:
            mask = np.asarray(image.convert("L"), np.float32) / 255.0
        path = args.corpus / row.path
        item: dict[str, Any] = {"path": row.path, "subtype": row.subtype, "case": case(record, row.subtype)}
        for detector in detectors:
            media = MediaInput(path=path, kind="image", mime=MIMES.get(path.suffix, ""), size=path.stat().st_size)
            out = detector.applies(media) or detector.run(media, DetectorContext())
            art = next((a for a in out.artifacts if a.name.endswith(("_heatmap.png", "_mask.png"))), None)
            pixel_auc, hit = localise(heat_values(art.data) if art else None, mask)
            item[detector.name] = {"pixel_auc": round(pixel_auc, 4), "peak_hit": hit, "p": out.probability}
        items.append(item)
    if args.json:
        args.json.write_text(json.dumps(items, indent=1))

    print(f"localisation on {args.corpus} ({args.split}): {len(items)} manipulated items with masks")
    print("per detector: mean pixel AUC / share of items whose heatmap peak is in the paste")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[(item["subtype"], "all")].append(item)
        groups[(item["subtype"], item["case"])].append(item)
    names = [d.name for d in detectors]
    print(f"{'subtype':10s} {'case':34s} {'n':>3s} " + " ".join(f"{n[:14]:>14s}" for n in names))
    for (subtype, kind), group in sorted(groups.items()):
        cells = []
        for name in names:
            a = np.mean([i[name]["pixel_auc"] for i in group])
            hits = np.mean([i[name]["peak_hit"] for i in group])
            cells.append(f"{a:.3f} / {hits:4.0%}")
        print(f"{subtype:10s} {kind:34s} {len(group):3d} " + " ".join(f"{c:>14s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
