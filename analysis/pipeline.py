"""Run detectors on one local file under their time budgets. No ORM here: services, the evaluation command and
the benchmark all call the same code.

Time budgets are enforced with a worker thread per detector and a join timeout. Python cannot kill a thread, so a
detector that hangs keeps its thread until it returns (daemon, so it never blocks process exit) while the pipeline
moves on with a typed ``timeout`` abstention; the Celery hard time limit is the backstop that recycles a worker
whose threads never come back. Signal-based alarms were rejected: they only work in the main thread and cannot
interrupt native code (OpenCV, PyAV), which is where a hang would be.

While detectors run, an optional `Heartbeat` is called at least every `every` seconds (between detectors and
while waiting for a slow one): the worker renews its claim on the analysis with it (analysis/services.py), so a
claim whose worker was killed lapses within seconds instead of a task time limit. The heartbeat's exception is
the one exception these functions let through: it means another worker has taken the analysis over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis import scoring
from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

logger = logging.getLogger(__name__)


@dataclass
class Heartbeat:
    """Calls `beat` when `every` seconds have passed since the last call (or since it was created)."""

    beat: Callable[[], None]
    every: float
    last: float = field(default_factory=time.monotonic)

    def maybe(self) -> None:
        if time.monotonic() - self.last >= self.every:
            self.beat()
            self.last = time.monotonic()


@dataclass
class DetectorRun:
    name: str
    version: str
    output: DetectorOutput
    duration_ms: int


def error_output(exc: BaseException) -> DetectorOutput:
    """An `error` result for an exception a detector raised; the type is kept, the message is shortened."""
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return DetectorOutput(
        status="error",
        reasons=[Reason("detector_error", f"The detector failed ({type(exc).__name__}).", Category.INFO)],
        evidence={"exception": type(exc).__name__, "message": message},
    )


def run_detector(
    detector: Detector,
    media: MediaInput,
    context: DetectorContext,
    *,
    budget_scale: float = 1.0,
    heartbeat: Heartbeat | None = None,
) -> DetectorRun:
    """Run one detector: `applies`, then `run` in a thread bounded by its time budget. Never raises (except
    what the heartbeat raises)."""
    started = time.perf_counter()
    try:
        refusal = detector.applies(media)
    except Exception as exc:
        logger.exception("detector %s raised in applies()", detector.name)
        refusal = error_output(exc)
    if refusal is not None:
        return DetectorRun(detector.name, detector.version, refusal, elapsed_ms(started))

    budget = float(detector.time_budget_s) * budget_scale
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["output"] = detector.run(media, context)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"detector-{detector.name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + budget
    while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
        thread.join(min(left, heartbeat.every) if heartbeat else left)
        if heartbeat:
            heartbeat.maybe()
    if thread.is_alive():
        logger.warning("detector %s exceeded its %.1f s budget", detector.name, budget)
        output = DetectorOutput.abstain(
            AbstainCode.TIMEOUT, f"The detector did not finish within its {budget:g} s budget.", budget_s=budget
        )
    elif "error" in box:
        logger.error("detector %s raised", detector.name, exc_info=box["error"])
        output = error_output(box["error"])
    elif not isinstance(box.get("output"), DetectorOutput):
        output = error_output(TypeError(f"run() returned {type(box.get('output')).__name__}"))
    else:
        output = box["output"]
    return DetectorRun(detector.name, detector.version, output, elapsed_ms(started))


def run_detectors(
    detectors: Iterable[Detector],
    media: MediaInput,
    context: DetectorContext,
    *,
    budget_scale: float = 1.0,
    heartbeat: Heartbeat | None = None,
) -> Iterable[DetectorRun]:
    """Yield one run per detector, in order (a generator, so callers can store each result as it comes)."""
    for detector in detectors:
        if heartbeat:
            heartbeat.maybe()
        yield run_detector(detector, media, context, budget_scale=budget_scale, heartbeat=heartbeat)


def evidence_from_run(run: DetectorRun) -> scoring.DetectorEvidence:
    output = run.output
    return scoring.DetectorEvidence(
        detector=run.name,
        status=output.status,
        score=output.probability if output.status == "ok" else None,
        reasons=[r.as_dict() for r in output.reasons],
        decisive=[str(d) for d in output.decisive],
    )


def score_runs(runs: Sequence[DetectorRun], policy: scoring.Policy) -> scoring.ScoreResult:
    return scoring.score([evidence_from_run(r) for r in runs], policy)


def elapsed_ms(started: float) -> int:
    """Milliseconds since a `time.perf_counter()` reading, never negative."""
    return max(0, round((time.perf_counter() - started) * 1000))
