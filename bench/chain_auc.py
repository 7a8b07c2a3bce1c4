"""Trust-score AUC per subtype and save chain from an `evaluate_detectors --corpus` report.

    python bench/chain_auc.py var/evaluation/corpus-report.json [--detector double_jpeg]

`manage.py evaluate_detectors --corpus` reports AUCs per label and subtype; the forgery corpus also varies how each
item was saved last (JPEG, PNG, JPEG-then-PNG; `bench/forgery_corpus.py`), which is where the JPEG detectors
differ. This reads the report's items (no detector runs) and ranks each subtype's items of one save chain against
every authentic item of the report, by the trust score's manipulation probability P (as the report's own AUCs) or, with ``--detector``, by that
detector's probability (a missing one ranks as 0.5, as it counts nothing in the trust score).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `analysis` importable

from analysis.evaluation import auc
from bench.detector_auc import save_chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--detector", default="")
    args = parser.parse_args(argv)
    items: list[dict[str, Any]] = json.loads(args.report.read_text())["items"]

    def score(item: dict[str, Any]) -> float:
        if args.detector:
            value = (item.get("detector_scores") or {}).get(args.detector)
            return 0.5 if value is None else float(value)
        return float(item["probability"]) if item.get("probability") is not None else 0.5

    authentic = [i for i in items if i["label"] == "authentic"]
    print(f"{args.detector or 'trust score'}: {len(items)} items, {len(authentic)} authentic")
    print(f"{'subtype':12s} {'all':>12s} {'png':>12s} {'jpeg':>12s} {'jpeg_png':>12s}")
    for subtype in sorted({i["subtype"] or "" for i in items if i["label"] != "authentic"}):
        cells = []
        for chain in ("all", "png", "jpeg", "jpeg_png"):
            group = [i for i in items if i["subtype"] == subtype and (chain == "all" or save_chain(i["path"]) == chain)]
            value = auc([score(i) for i in group], [score(i) for i in authentic])
            cells.append(f"{value:.3f} ({len(group):2d})" if value is not None else "-")
        print(f"{subtype:12s} " + " ".join(f"{c:>12s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
