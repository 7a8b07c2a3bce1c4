"""One detector over a corpus split, in-process: its AUC per subtype and per save chain, and its time per item.

    python bench/detector_auc.py DIR --detector double_jpeg [--split tune] [--set z_midpoint=4.5] [--json out.json]
    python bench/detector_auc.py --detector double_jpeg --time-1024
    python bench/detector_auc.py --detector double_jpeg --folder ../shared/testdata/photos

For tuning a single detector without the whole pipeline (``manage.py evaluate_detectors --corpus`` gives the
trust-score figures). DIR is a corpus in the ``--corpus`` format (``bench/forgery_corpus.py``); the save chain is
read from the file name (``-jpeg.jpg``, ``-png.png``, ``-jpeg_png.png``; camera files are ``camera``). Each
manipulated or generated subtype is ranked against every authentic item of the split ("all") and against the
format-matched controls of the same chain ("resaved"); an abstention or a missing probability ranks as 0.5, as
it counts nothing in the trust score. ``--set`` overrides fields of the detector's config dataclass. Also
printed: how many authentic items reach p > 0.5 and the mean / p95 time per item (and per 1024x1024 px).
``--time-1024`` instead times the detector on one 1024x1024 doubly-compressed JPEG (q75 then q90, made from
scikit-image's astronaut) and on the same image saved again as PNG (JPEG-then-PNG), each against decoding it,
medians of 15 runs in the same process (the decode is shared by the pipeline, so the detector's time excludes it). ``--folder`` runs it over every JPEG and PNG of an unlabelled
folder (real camera photos, say) and prints its outcomes and the files it flags (p > 0.5): its false alarms there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # as hlekkr/celery.py sets for every worker, before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `analysis` importable

from analysis.detectors import registry  # noqa: E402
from analysis.detectors.base import DetectorContext, MediaInput  # noqa: E402
from analysis.evaluation import auc  # noqa: E402
from bench.forgery_corpus import iter_labels  # noqa: E402

MIMES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def save_chain(path: str) -> str:
    stem = Path(path).stem
    for chain in ("jpeg_png", "jpeg", "png"):
        if stem.endswith("-" + chain) or stem.endswith("_" + chain):
            return chain
    return "camera"


def build_detector(name: str, overrides: list[str]) -> Any:
    spec = next((s for s in registry.REGISTERED if s.name == name), None)
    if spec is None:
        raise SystemExit(f"unknown detector {name!r}")
    state = registry.load(spec)
    if state.cls is None:
        raise SystemExit(state.error)
    detector: Any = state.cls()
    if overrides:
        changes: dict[str, Any] = {}
        for item in overrides:
            key, _, raw = item.partition("=")
            current = getattr(detector.config, key)
            changes[key] = type(current)(raw)
        detector.config = dataclasses.replace(detector.config, **changes)
    return detector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, nargs="?")
    parser.add_argument("--detector", required=True)
    parser.add_argument("--split", default="tune", choices=["tune", "eval", "all"])
    parser.add_argument("--set", action="append", default=[], help="config field=value (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write every item's result here")
    parser.add_argument("--time-1024", action="store_true", help="time one 1024x1024 JPEG against its decode")
    parser.add_argument("--folder", type=Path, default=None, help="unlabelled images: report what it flags")
    args = parser.parse_args(argv)
    if args.time_1024:
        return time_1024(build_detector(args.detector, args.set))
    if args.folder:
        return scan_folder(build_detector(args.detector, args.set), args.folder)
    if args.corpus is None:
        parser.error("a corpus folder is needed (or --time-1024)")

    import cv2

    cv2.setNumThreads(1)
    detector = build_detector(args.detector, args.set)
    rows = [r for r in iter_labels(args.corpus) if args.split == "all" or r.split == args.split]
    items: list[dict[str, Any]] = []
    for row in rows:
        path = args.corpus / row.path
        media = MediaInput(path=path, kind="image", mime=MIMES.get(path.suffix, ""), size=path.stat().st_size)
        try:  # the pipeline decodes once for every detector: leave the decode out of the detector's time
            pixels = media.decoded.width * media.decoded.height
        except Exception:
            pixels = 0
        started = time.perf_counter()
        out = detector.applies(media) or detector.run(media, DetectorContext())
        ms = (time.perf_counter() - started) * 1000
        items.append(
            {
                "path": row.path,
                "label": row.label,
                "subtype": row.subtype,
                "chain": save_chain(row.path),
                "p": out.probability,
                "status": out.status,
                "abstain": str(out.abstain_code or ""),
                "ms": ms,
                "ms_per_mp": ms / max(pixels / 2**20, 1e-6) if pixels else None,
                "evidence": {
                    k: v
                    for k, v in out.evidence.items()
                    if k in {"region_z", "region_px", "primary_steps", "off_grid_z"}
                },
            }
        )
    if args.json:
        args.json.write_text(json.dumps(items, indent=1))
    report(items, args)
    return 0


def scan_folder(detector: Any, folder: Path) -> int:
    from collections import Counter

    outcomes: Counter[str] = Counter()
    flagged = []
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    for path in files:
        media = MediaInput(path=path, kind="image", mime=MIMES.get(path.suffix.lower(), ""), size=path.stat().st_size)
        out = detector.applies(media) or detector.run(media, DetectorContext())
        outcomes[str(out.abstain_code or (out.reasons[0].code if out.reasons else out.status))] += 1
        if out.probability is not None and out.probability > 0.5:
            flagged.append((path.name, round(out.probability, 3)))
    print(f"{detector.name} on {folder}: {len(files)} images, {len(flagged)} flagged (p > 0.5) {flagged}")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    return 0


def time_1024(detector: Any, runs: int = 15) -> int:
    import io
    import statistics
    import tempfile

    from PIL import Image
    from skimage import data, transform

    rgb = (transform.resize(data.astronaut(), (1024, 1024)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=75)
    first = np.asarray(Image.open(buffer).convert("RGB"))
    with tempfile.TemporaryDirectory() as folder:
        double = Image.fromarray(first)
        double.save(Path(folder) / "double.jpg", "JPEG", quality=90)
        with Image.open(Path(folder) / "double.jpg") as saved:  # the same file saved losslessly: JPEG-then-PNG
            saved.convert("RGB").save(Path(folder) / "double.png")
        for name, label in (("double.jpg", "JPEG q75 then q90"), ("double.png", "JPEG q75, q90, then PNG")):
            path = Path(folder) / name
            mime = "image/png" if name.endswith(".png") else "image/jpeg"
            decode, detect = [], []
            for _ in range(runs):
                item = MediaInput(path=path, kind="image", mime=mime, size=path.stat().st_size)
                started = time.perf_counter()
                item.decoded  # noqa: B018 - the shared decode, timed apart
                decode.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                detector.run(item, DetectorContext())
                detect.append((time.perf_counter() - started) * 1000)
            d, t = statistics.median(decode), statistics.median(detect)
            print(f"1024x1024 {label}: decode {d:.1f} ms, {detector.name} {t:.1f} ms ({t / d:.1f}x the decode)")
    return 0


def _p(item: dict[str, Any]) -> float:
    return 0.5 if item["p"] is None else float(item["p"])


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def report(items: list[dict[str, Any]], args: argparse.Namespace) -> None:
    authentic = [i for i in items if i["label"] == "authentic"]
    print(f"{args.detector} on {args.corpus} ({args.split}): {len(items)} items, {len(authentic)} authentic")
    if args.set:
        print("config: " + ", ".join(args.set))
    print(f"{'subtype':12s} {'chain':9s} {'n':>4s} {'AUC all':>8s} {'AUC resaved':>12s} {'p>0.5':>7s} {'abst':>5s}")
    subtypes = sorted({i["subtype"] for i in items if i["label"] != "authentic"})
    for subtype in subtypes:
        positives = [i for i in items if i["subtype"] == subtype]
        for chain in ("all", "png", "jpeg", "jpeg_png"):
            pos = positives if chain == "all" else [i for i in positives if i["chain"] == chain]
            if not pos:
                continue
            controls = [i for i in authentic if i["subtype"] == "resaved" and (chain == "all" or i["chain"] == chain)]
            a_all = auc([_p(i) for i in pos], [_p(i) for i in authentic])
            a_res = auc([_p(i) for i in pos], [_p(i) for i in controls])
            hits = sum(_p(i) > 0.5 for i in pos)
            abstained = sum(i["p"] is None for i in pos)
            print(
                f"{subtype:12s} {chain:9s} {len(pos):4d} {_fmt(a_all):>8s} {_fmt(a_res):>12s} {hits:7d} {abstained:5d}"
            )
    for subtype in ("camera", "resaved"):
        group = [i for i in authentic if i["subtype"] == subtype]
        flagged = [i["path"] for i in group if _p(i) > 0.5]
        print(f"authentic/{subtype}: {len(flagged)} of {len(group)} at p > 0.5 {flagged[:5]}")
    ms = np.array([i["ms"] for i in items])
    per_mp = np.array([i["ms_per_mp"] for i in items if i["ms_per_mp"]])
    print(
        f"time per item: mean {ms.mean():.1f} ms, p95 {np.percentile(ms, 95):.1f} ms; "
        f"per 1024x1024 px: mean {per_mp.mean():.1f} ms, p95 {np.percentile(per_mp, 95):.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
