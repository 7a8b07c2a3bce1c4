"""Run the local pipeline over a labelled corpus (`bench/forgery_corpus.py`) and print AUCs per subtype.

    python bench/corpus_eval.py DIR [--split eval] [--detectors copy_move,splice] [--json out.json]

Each item goes through exactly the worker's code (`analysis.pipeline.run_detectors` + scoring with the default
policy), without Celery or storage. For every manipulated/generated subtype, the items' scores are ranked against
the authentic items of the same split: the combined probability's AUC, and each detector's own AUC. The
false-alarm figure is the share of authentic items whose verdict is ``likely_manipulated``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings_test")
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # as hlekkr/celery.py sets for every worker, before numpy loads

MIMES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--split", default="eval", choices=["eval", "tune", "all"])
    parser.add_argument("--detectors", default="", help="comma-separated names (default: every registered one)")
    parser.add_argument("--json", type=Path, default=None, help="write every item's scores here")
    args = parser.parse_args(argv)

    import django

    django.setup()
    import cv2

    cv2.setNumThreads(1)
    from analysis import scoring
    from analysis.detectors import registry
    from analysis.detectors.base import DetectorConfig, DetectorContext, MediaInput
    from analysis.evaluation import auc
    from analysis.pipeline import run_detectors, score_runs
    from bench.forgery_corpus import iter_labels

    wanted = {n for n in args.detectors.split(",") if n}
    detectors = [d for d in registry.detectors(DetectorConfig()) if not wanted or d.name in wanted]
    policy = scoring.Policy(version=0)
    rows = [r for r in iter_labels(args.corpus) if args.split == "all" or r.split == args.split]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for row in rows:
        path = args.corpus / row.path
        media = MediaInput(path=path, kind="image", mime=MIMES.get(path.suffix, ""), size=path.stat().st_size)
        runs = list(run_detectors(detectors, media, DetectorContext()))
        scored = score_runs(runs, policy)
        results.append(
            {
                "path": row.path,
                "label": row.label,
                "subtype": row.subtype,
                "p": scored.manipulation_probability,
                "verdict": scored.verdict,
                "detectors": {r.name: r.output.probability for r in runs},
                "ms": {r.name: r.duration_ms for r in runs},
            }
        )
    seconds = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))

    authentic = [r for r in results if r["label"] == "authentic"]
    names = [d.name for d in detectors]
    subtypes = sorted({r["subtype"] for r in results if r["label"] != "authentic"})
    print(f"{len(results)} items ({args.split}), {len(authentic)} authentic, {seconds:.0f} s")
    header = f"{'subtype':12s} {'n':>4s} {'score':>6s} " + " ".join(f"{n[:10]:>10s}" for n in names)
    print(header)

    def val(r: dict[str, Any], name: str | None) -> float:
        v = r["p"] if name is None else r["detectors"].get(name)
        return 0.5 if v is None else float(v)  # an abstention ranks as "no opinion"

    for subtype in subtypes:
        positives = [r for r in results if r["subtype"] == subtype]
        cells = [auc([val(r, None) for r in positives], [val(r, None) for r in authentic])]
        cells += [auc([val(r, n) for r in positives], [val(r, n) for r in authentic]) for n in names]
        print(
            f"{subtype:12s} {len(positives):4d} "
            + " ".join(f"{c if c is not None else float('nan'):6.3f}" for c in cells[:1])
            + " "
            + " ".join(f"{c if c is not None else float('nan'):10.3f}" for c in cells[1:])
        )
    false_alarms = sum(r["verdict"] == "likely_manipulated" for r in authentic)
    print(f"authentic called likely_manipulated: {false_alarms}/{len(authentic)}")
    per_detector_ms = {n: sum(r["ms"].get(n, 0) for r in results) / max(len(results), 1) for n in names}
    print("mean ms per item: " + ", ".join(f"{n} {v:.0f}" for n, v in per_detector_ms.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
