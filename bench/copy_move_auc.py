"""The copy_move detector alone over a forgery-corpus split: AUC per save chain, found/flagged counts, ms per image.

    python bench/copy_move_auc.py DIR [--split tune] [--compare OLD.py] [--speed 4] [--photos DIR]
                                      [--set key=value ...] [--json F] [--limit N]

Runs `CopyMoveDetector` in-process (no Django, no database) on the `manipulated/copy_move` and `authentic` items of
one split of a corpus built by bench/forgery_corpus.py, and prints: the detector's AUC of copy-moves against all
authentic items of the split, overall and per save chain of the copy-move (jpeg, png, jpeg_png); how many
copy-moves it finds (probability >= 0.5) and how many authentic items it flags; its mean and p95 ms per item.

``--compare OLD.py`` loads another version of the detector module (e.g. ``git show main:analysis/detectors/
copy_move.py > /tmp/old.py``) and runs it on the same items in the same process, so "before" and "after" are
measured under the same machine load. ``--speed N`` also times both on N 1024x1024 JPEGs made like
bench/analysis.py's (scikit-image photos scaled up with mild noise, quality 90); ``--photos DIR`` counts the
camera JPEGs of DIR (e.g. ../shared/testdata/photos) each version flags (probability >= 0.5). ``--set`` overrides a
`CopyMoveConfig` field of the current version (for tuning on the tune split only; the eval split is not for this).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # as the Celery workers run

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from analysis.detectors.base import DECODE_ERRORS, DetectorContext, MediaInput  # noqa: E402
from analysis.evaluation import auc  # noqa: E402
from bench.detector_auc import save_chain as chain_of  # noqa: E402
from bench.forgery_corpus import iter_labels  # noqa: E402


def load_detector(module_path: Path | None, overrides: dict[str, str]) -> Any:
    if module_path is None:
        from analysis.detectors import copy_move as module
    else:
        spec = importlib.util.spec_from_file_location("copy_move_compare", module_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    config = module.CopyMoveConfig()
    if overrides:
        fields = {f.name: f for f in dataclasses.fields(config)}
        typed = {k: type(getattr(config, k))(v) for k, v in overrides.items() if k in fields}
        unknown = set(overrides) - set(typed)
        if unknown:
            raise SystemExit(f"unknown CopyMoveConfig fields: {sorted(unknown)}")
        config = dataclasses.replace(config, **typed)
    return module.CopyMoveDetector(config)


def run_one(detector: Any, path: Path) -> tuple[float, float, dict[str, Any]]:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size)
    with contextlib.suppress(*DECODE_ERRORS):  # an unreadable file is the detector's to report
        media.decoded  # noqa: B018 - decoded once per analysis and shared, so not the detector's time
    started = time.perf_counter()
    out = detector.run(media, DetectorContext())
    ms = (time.perf_counter() - started) * 1000
    return (out.probability if out.probability is not None else 0.0), ms, out.evidence


def speed_images(count: int, folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(11)
    sources = [data.astronaut(), data.coffee(), data.rocket(), data.chelsea()]
    paths = []
    for i in range(count):
        image = Image.fromarray(sources[i % len(sources)]).resize((1024, 1024), Image.Resampling.BICUBIC)
        arr = np.asarray(image).astype(np.int16) + rng.normal(0, 3, (1024, 1024, 3)).astype(np.int16)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        path = folder / f"speed-{i}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def report(name: str, rows: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    pos = [(c, p) for label, c, p, _ in rows if label == "manipulated"]
    neg = [p for label, _, p, _ in rows if label == "authentic"]
    ms = np.array([m for *_, m in rows])
    out: dict[str, Any] = {"auc": auc([p for _, p in pos], neg)}
    for chain in ("png", "jpeg", "jpeg_png"):
        out[f"auc_{chain}"] = auc([p for c, p in pos if c == chain], neg)
    out["found"] = f"{sum(p >= 0.5 for _, p in pos)} of {len(pos)}"
    out["flagged"] = f"{sum(p >= 0.5 for p in neg)} of {len(neg)}"
    out["ms_mean"], out["ms_p95"] = round(float(ms.mean()), 1), round(float(np.percentile(ms, 95)), 1)
    figures = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items())
    print(f"{name}: {figures}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--split", default="tune", choices=["tune", "eval", "all"])
    parser.add_argument("--compare", type=Path, default=None, help="another copy_move.py to run on the same items")
    parser.add_argument("--speed", type=int, default=0, help="also time N 1024x1024 JPEGs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="CopyMoveConfig override")
    parser.add_argument("--json", type=Path, default=None, help="write every item's figures here")
    parser.add_argument("--limit", type=int, default=0, help="only the first N items of each label (quick looks)")
    parser.add_argument("--photos", type=Path, default=None, help="also count false alarms on these camera JPEGs")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    overrides = dict(s.split("=", 1) for s in args.set)
    detectors = {"current": load_detector(None, overrides)}
    if args.compare:
        detectors = {"compare": load_detector(args.compare, {}), **detectors}
    rows = [
        r
        for r in iter_labels(args.corpus)
        if (args.split == "all" or r.split == args.split)
        and (r.label == "authentic" or (r.label == "manipulated" and r.subtype == "copy_move"))
    ]
    if args.limit:
        rows = [r for r in rows if r.label == "authentic"][: args.limit] + [
            r for r in rows if r.label == "manipulated"
        ][: args.limit]
    results: dict[str, list[tuple[str, str, float, float]]] = {name: [] for name in detectors}
    items: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {"path": row.path, "label": row.label, "chain": chain_of(row.path)}
        for name, detector in detectors.items():  # alternate per item: both see the same load
            p, ms, evidence = run_one(detector, args.corpus / row.path)
            results[name].append((row.label, chain_of(row.path), p, ms))
            item[name] = {"p": round(p, 4), "ms": round(ms, 1), "evidence": evidence}
        items.append(item)
    print(
        f"split {args.split}: {sum(r.label == 'manipulated' for r in rows)} copy-moves, "
        f"{sum(r.label == 'authentic' for r in rows)} authentic"
    )
    summary = {name: report(name, r) for name, r in results.items()}
    if args.speed:
        with tempfile.TemporaryDirectory() as folder:
            paths = speed_images(args.speed, Path(folder))
            times: dict[str, list[float]] = {name: [] for name in detectors}
            for _ in range(3):
                for path in paths:
                    for name, detector in detectors.items():
                        times[name].append(run_one(detector, path)[1])
            for name, t in times.items():
                # the median: other processes on the machine make single runs slow at random
                print(f"{name}: {np.median(t):.0f} ms per 1024x1024 JPEG (median of {len(t)}, decode excluded)")
                summary[name]["ms_1024"] = round(float(np.median(t)), 1)
    if args.photos:
        photos = sorted(args.photos.glob("*.jpg"))
        for name, detector in detectors.items():
            scored = [(path.name, run_one(detector, path)[0]) for path in photos]
            flagged = [f"{n} {p:.2f}" for n, p in scored if p >= 0.5]
            print(f"{name}: {len(flagged)} of {len(scored)} camera photos in {args.photos} flagged {flagged}")
            summary[name]["photos_flagged"] = flagged
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "items": items}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
