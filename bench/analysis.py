"""Local analysis pipeline throughput against JPEG decoding, per-detector time shares, peak worker memory.

    python bench/analysis.py [--small 4] [--large 2] [--repeat 3] [--threads N]

Each size runs in its own fresh process (as a Celery worker child would): first decode-only (Pillow open +
convert to RGB) of every file, then the whole local pipeline (every registered detector under its time budget, then
scoring) on the same files, exactly the code the worker runs minus the database and storage. Reported per size:
images/s of the pipeline per process, the pipeline/decode ratio of wall time AND of CPU time (the pipeline runs
`analysis.pipeline.THREADS` detectors at once unless --threads says otherwise, so wall time is shorter than CPU
time on an idle machine; a worker already running one analysis per core gains nothing from the threads, and
then the CPU ratio is the one that says how many analyses a core can do), each detector's wall and CPU time, and
the process's peak resident memory (ru_maxrss). Targets (issue 13): pipeline within 15x decode time on
1024x1024, peak memory under 1 GB on 4000x3000.

The test photos are scikit-image's astronaut and coffee scaled to size with mild noise added (so block-level
forensics see sensor-like texture rather than flat upscaled areas), saved as JPEG quality 90.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings_test")
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # as hlekkr/celery.py sets for every worker, before numpy loads

TARGET_RATIO_1024 = 15.0  # issue 13: with the copy-move, splice and generated-image detectors (was 10x, issue 4)
TARGET_PEAK_MB_LARGE = 1024.0
DECODE_TRIES = 5


def _make_jpegs(width: int, height: int, count: int, folder: Path) -> list[Path]:
    import numpy as np
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(11)
    sources = [data.astronaut(), data.coffee(), data.rocket(), data.chelsea()]
    paths = []
    for i in range(count):
        image = Image.fromarray(sources[i % len(sources)]).resize((width, height), Image.Resampling.BICUBIC)
        arr = np.asarray(image).astype(np.int16) + rng.normal(0, 3, (height, width, 3)).astype(np.int16)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        path = folder / f"bench-{width}x{height}-{i}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def _measure(paths: list[str], threads: int | None, repeat: int, queue: Any) -> None:
    """Runs in a fresh process: decode-only and pipeline timings of every file; reports them and peak RSS."""
    import django

    django.setup()
    import cv2
    from PIL import Image

    # As in the Celery workers (hlekkr/celery.py): one OpenCV thread per process, so the figures are per core.
    cv2.setNumThreads(1)

    from analysis import scoring
    from analysis.detectors import registry
    from analysis.detectors.base import DetectorConfig, DetectorContext, MediaInput
    from analysis.pipeline import THREADS, run_detectors, score_runs

    threads = THREADS if threads is None else threads
    detectors = registry.detectors(DetectorConfig())
    context = DetectorContext()
    policy = scoring.Policy(version=0)

    # Warm-up on the first file (imports, OpenCV cascades, c2pa library), not counted.
    warm = Path(paths[0])
    media = MediaInput(path=warm, kind="image", mime="image/jpeg", size=warm.stat().st_size)
    list(run_detectors(detectors, media, context, threads=threads))

    # Decode and pipeline alternate file by file, `repeat` rounds, so a burst of load from other processes hits
    # both sides of the ratio alike; each decode is the median of DECODE_TRIES (it takes a few ms, so one
    # scheduler hiccup would otherwise move the ratio by tens of percent).
    decode_s = decode_cpu_s = pipeline_s = pipeline_cpu_s = 0.0
    per_detector: dict[str, float] = {}
    per_detector_cpu: dict[str, float] = {}
    statuses: dict[str, list[str]] = {}
    for _ in range(repeat):
        for p in paths:
            walls, cpus = [], []
            for _ in range(DECODE_TRIES):
                started, cpu = time.perf_counter(), time.process_time()
                with Image.open(p) as im:
                    im.convert("RGB").load()
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
            decode_s += statistics.median(walls)
            decode_cpu_s += statistics.median(cpus)

            path = Path(p)
            media = MediaInput(path=path, kind="image", mime="image/jpeg", size=path.stat().st_size)
            started, cpu = time.perf_counter(), time.process_time()
            runs = list(run_detectors(detectors, media, context, threads=threads))
            score_runs(runs, policy)
            pipeline_s += time.perf_counter() - started
            pipeline_cpu_s += time.process_time() - cpu
            for run in runs:
                per_detector[run.name] = per_detector.get(run.name, 0.0) + run.duration_ms / 1000
                per_detector_cpu[run.name] = per_detector_cpu.get(run.name, 0.0) + run.cpu_ms / 1000
                code = run.output.reasons[0].code if run.output.reasons and run.output.status != "ok" else ""
                statuses.setdefault(run.name, []).append(run.output.status + (f":{code}" if code else ""))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    queue.put(
        {
            "n": len(paths) * repeat,
            "files": len(paths),
            "load": os.getloadavg()[0],
            "threads": threads,
            "decode_s": decode_s,
            "decode_cpu_s": decode_cpu_s,
            "pipeline_s": pipeline_s,
            "pipeline_cpu_s": pipeline_cpu_s,
            "per_detector_s": per_detector,
            "per_detector_cpu_s": per_detector_cpu,
            "statuses": statuses,
            "budgets": {d.name: d.time_budget_s for d in detectors},
            "peak_mb": peak_kb / 1024,
        }
    )


def run_size(width: int, height: int, count: int, folder: Path, threads: int | None, repeat: int) -> dict[str, Any]:
    paths = [str(p) for p in _make_jpegs(width, height, count, folder)]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_measure, args=(paths, threads, repeat, queue))
    process.start()
    result = queue.get(timeout=1800)
    process.join()
    result["size"] = f"{width}x{height}"
    return result


def print_result(result: dict[str, Any]) -> None:
    n = result["n"]
    ratio = result["pipeline_s"] / result["decode_s"] if result["decode_s"] else float("inf")
    cpu_ratio = result["pipeline_cpu_s"] / result["decode_cpu_s"] if result["decode_cpu_s"] else float("inf")
    print(
        f"\n{result['size']} JPEG q90, {result['files']} files x {n // result['files']} rounds, one process, "
        f"{result['threads']} detector thread(s), load average {result['load']:.1f} at the end"
    )
    print(
        f"  decode only:   {result['decode_s'] / n * 1000:8.1f} ms/image wall, {result['decode_cpu_s'] / n * 1000:.1f} "
        f"ms CPU  ({n / result['decode_s']:.1f} images/s)"
    )
    print(
        f"  full pipeline: {result['pipeline_s'] / n * 1000:8.1f} ms/image wall, "
        f"{result['pipeline_cpu_s'] / n * 1000:.1f} ms CPU  ({n / result['pipeline_s']:.2f} images/s)"
    )
    print(f"  pipeline / decode: {ratio:.1f}x wall time, {cpu_ratio:.1f}x CPU time")
    print(f"  peak worker memory (ru_maxrss): {result['peak_mb']:.0f} MB")
    print("  detectors (mean ms/image wall and CPU, CPU share, budget, outcomes):")
    total_cpu = sum(result["per_detector_cpu_s"].values()) or 1.0
    for name, seconds in sorted(result["per_detector_s"].items(), key=lambda kv: -kv[1]):
        outcomes = sorted(set(result["statuses"].get(name, [])))
        budget = result["budgets"].get(name)
        cpu = result["per_detector_cpu_s"].get(name, 0.0)
        print(
            f"    {name:<14} {seconds / n * 1000:8.1f} ms  {cpu / n * 1000:8.1f} ms CPU  {100 * cpu / total_cpu:5.1f} %  "
            f"budget {budget:>4} s  {', '.join(outcomes)}"
        )
    result["ratio"] = ratio
    result["cpu_ratio"] = cpu_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=4, help="number of 1024x1024 images")
    parser.add_argument("--large", type=int, default=2, help="number of 4000x3000 images")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over the files (default 3)")
    parser.add_argument("--threads", type=int, help="detectors run at once (default: analysis.pipeline.THREADS)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlekkr-bench-") as tmp:
        small = run_size(1024, 1024, args.small, Path(tmp), args.threads, args.repeat)
        print_result(small)
        # --large 0 measures 1024x1024 only (a child with no files would fail and leave this waiting on its queue).
        large = run_size(4000, 3000, args.large, Path(tmp), args.threads, args.repeat) if args.large else None
        if large is not None:
            print_result(large)
    print("\ntargets:")
    print(
        f"  1024x1024 pipeline within {TARGET_RATIO_1024:.0f}x decode: {small['ratio']:.1f}x wall -> "
        f"{'met' if small['ratio'] <= TARGET_RATIO_1024 else 'MISSED'}; {small['cpu_ratio']:.1f}x CPU -> "
        f"{'met' if small['cpu_ratio'] <= TARGET_RATIO_1024 else 'MISSED'}"
    )
    if large is not None:
        print(
            f"  4000x3000 peak memory under {TARGET_PEAK_MB_LARGE:.0f} MB: {large['peak_mb']:.0f} MB -> "
            f"{'met' if large['peak_mb'] < TARGET_PEAK_MB_LARGE else 'MISSED'}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"small": small, "large": large}, indent=2))


if __name__ == "__main__":
    main()
