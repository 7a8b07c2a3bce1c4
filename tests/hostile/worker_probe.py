"""Run the hostile corpus straight through the analysis pipeline, in this process, and report.

`python tests/hostile/worker_probe.py [NAME ...]` feeds each file to every registered detector exactly as the
worker does (`run_detectors` with the detectors' time budgets, then scoring), trusting the kind and MIME type
the hostile client claimed, as a worker would trust the row of an item that slipped past validation. It prints
one JSON line per file (each detector's status and first reason code, the verdict, the seconds taken, the
process's peak RSS so far) and a last line with the peak RSS of the whole run. No database is needed: the
detector context is the default one (no hash banks, no trust anchors).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings_test")


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that across exec from the
    forked copy of the parent, so a probe started by a pytest worker that had grown to 1.2 GB reported 1.2 GB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def kind_of(content_type: str) -> str:
    return content_type.split("/", 1)[0] if content_type.split("/", 1)[0] in ("image", "video", "audio") else "image"


def main(names: list[str]) -> int:
    import django

    django.setup()
    import logging

    logging.disable(logging.CRITICAL)  # detector errors are reported below, not logged as tracebacks
    from corpus import CORPUS

    from analysis import scoring
    from analysis.detectors import registry
    from analysis.detectors.base import DetectorConfig, DetectorContext, MediaInput
    from analysis.pipeline import run_detectors, score_runs

    policy = scoring.Policy(version=0)  # the default weights; the database's active policy is not needed here
    chosen = [entry for entry in CORPUS if not names or entry.name in names]
    with tempfile.TemporaryDirectory(prefix="hlekkr-hostile-") as directory:
        for entry in chosen:
            path = Path(directory) / entry.name
            path.write_bytes(entry.data)
            media = MediaInput(
                path=path,
                kind=kind_of(entry.content_type),  # type: ignore[arg-type]
                mime=entry.content_type,
                size=path.stat().st_size,
                filename=entry.filename,
            )
            started = time.perf_counter()
            runs = list(run_detectors(registry.detectors(DetectorConfig()), media, DetectorContext()))
            verdict = score_runs(runs, policy).verdict
            results = {
                run.name: [run.output.status, run.output.reasons[0].code if run.output.reasons else ""] for run in runs
            }
            line = {
                "name": entry.name,
                "family": entry.family,
                "size": media.size,
                "results": results,
                "verdict": verdict,
                "seconds": round(time.perf_counter() - started, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
            print(json.dumps(line), flush=True)
            path.unlink()
    print(json.dumps({"done": len(chosen), "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
