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

`run_detectors` runs up to `threads` detectors at a time (default `THREADS`): the pixel detectors spend most of
their time in numpy, OpenCV and Pillow, which release the GIL, so two threads shortened one 1024 px analysis
from ~320 to ~200 ms wall on the two-core machine (bench/analysis.py prints both the wall-time and the CPU-time
ratio). They add no throughput to a worker that already runs one analysis per core: the CPU time is the same. Each
detector keeps its own budget, counted from when it starts; results are still yielded in the detectors' order;
the heartbeat and the budget checks run in the calling thread (it owns the database connection).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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

# Detectors of one analysis that may run at the same time. Two: the worker machines have two cores, and a third
# thread only adds memory (12 MP: each pixel detector holds tens of MB at its peak).
THREADS = 2


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
    cpu_ms: int = 0  # CPU time of the detector's own thread (0 when it abstained before running or timed out)


def error_output(exc: BaseException) -> DetectorOutput:
    """An `error` result for an exception a detector raised; the type is kept, the message is shortened."""
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return DetectorOutput(
        status="error",
        reasons=[Reason("detector_error", f"The detector failed ({type(exc).__name__}).", Category.INFO)],
        evidence={"exception": type(exc).__name__, "message": message},
    )


def _refusal(detector: Detector, media: MediaInput) -> DetectorOutput | None:
    """`detector.applies(media)`, an exception turned into an `error` result."""
    try:
        return detector.applies(media)
    except Exception as exc:
        logger.exception("detector %s raised in applies()", detector.name)
        return error_output(exc)


class _Started:
    """One detector's `run` in its own daemon thread, with its deadline; `done` gets `key` when it returns."""

    def __init__(
        self, detector: Detector, media: MediaInput, context: DetectorContext, budget: float, started: float
    ) -> None:
        self.detector = detector
        self.budget = budget
        self.started = started
        self.deadline = time.monotonic() + budget
        self.box: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._target, args=(media, context), daemon=True)
        self.thread.name = f"detector-{detector.name}"
        self.done: queue.SimpleQueue[_Started] | None = None

    def _target(self, media: MediaInput, context: DetectorContext) -> None:
        cpu = time.thread_time()
        try:
            self.box["output"] = self.detector.run(media, context)
        except BaseException as exc:
            self.box["error"] = exc
        self.box["cpu_s"] = time.thread_time() - cpu
        self.box["ended"] = time.perf_counter()
        if self.done is not None:
            self.done.put(self)

    def start(self, done: queue.SimpleQueue[_Started] | None = None) -> _Started:
        self.done = done
        self.thread.start()
        return self

    @property
    def finished(self) -> bool:
        # Set before `done` hears of it, while `thread.is_alive()` may still be true for a moment.
        return "ended" in self.box

    def result(self) -> DetectorRun:
        """The run once `run` has returned, or a `timeout` abstention if it is still running."""
        detector = self.detector
        if not self.finished:
            logger.warning("detector %s exceeded its %.1f s budget", detector.name, self.budget)
            output = DetectorOutput.abstain(
                AbstainCode.TIMEOUT,
                f"The detector did not finish within its {self.budget:g} s budget.",
                budget_s=self.budget,
            )
            return DetectorRun(detector.name, detector.version, output, elapsed_ms(self.started))
        if "error" in self.box:
            logger.error("detector %s raised", detector.name, exc_info=self.box["error"])
            output = error_output(self.box["error"])
        elif not isinstance(self.box.get("output"), DetectorOutput):
            output = error_output(TypeError(f"run() returned {type(self.box.get('output')).__name__}"))
        else:
            output = self.box["output"]
        ended = self.box.get("ended", time.perf_counter())
        duration = max(0, round((ended - self.started) * 1000))
        return DetectorRun(detector.name, detector.version, output, duration, round(self.box.get("cpu_s", 0) * 1000))


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
    refusal = _refusal(detector, media)
    if refusal is not None:
        return DetectorRun(detector.name, detector.version, refusal, elapsed_ms(started))
    job = _Started(detector, media, context, float(detector.time_budget_s) * budget_scale, started).start()
    while not job.finished and (left := job.deadline - time.monotonic()) > 0:
        job.thread.join(min(left, heartbeat.every) if heartbeat else left)
        if heartbeat:
            heartbeat.maybe()
    return job.result()


def run_detectors(
    detectors: Iterable[Detector],
    media: MediaInput,
    context: DetectorContext,
    *,
    budget_scale: float = 1.0,
    heartbeat: Heartbeat | None = None,
    threads: int = THREADS,
) -> Iterator[DetectorRun]:
    """Yield one run per detector, in order (a generator, so callers can store each result as it comes), with up
    to `threads` detectors running at once (1: one after the other)."""
    if threads <= 1:
        for detector in detectors:
            if heartbeat:
                heartbeat.maybe()
            yield run_detector(detector, media, context, budget_scale=budget_scale, heartbeat=heartbeat)
        return
    yield from _run_concurrently(list(detectors), media, context, budget_scale, heartbeat, threads)


def _run_concurrently(
    detectors: list[Detector],
    media: MediaInput,
    context: DetectorContext,
    budget_scale: float,
    heartbeat: Heartbeat | None,
    threads: int,
) -> Iterator[DetectorRun]:
    """Start detectors in order while fewer than `threads` run; yield finished runs in order. A detector past its
    budget is reported as a timeout and its thread abandoned (as `run_detector` does), which frees its slot."""
    done: queue.SimpleQueue[_Started] = queue.SimpleQueue()
    waiting = list(enumerate(detectors))
    waiting.reverse()  # popped from the end: the first detector first
    running: dict[int, _Started] = {}
    finished: dict[int, DetectorRun] = {}
    next_out = 0
    while next_out < len(detectors):
        while waiting and len(running) < threads:
            index, detector = waiting.pop()
            started = time.perf_counter()
            refusal = _refusal(detector, media)
            if refusal is not None:
                finished[index] = DetectorRun(detector.name, detector.version, refusal, elapsed_ms(started))
                continue
            budget = float(detector.time_budget_s) * budget_scale
            running[index] = _Started(detector, media, context, budget, started).start(done)
        while next_out in finished:
            yield finished.pop(next_out)
            next_out += 1
            if heartbeat:
                heartbeat.maybe()
        if not running:
            continue
        timeout = max(0.0, min(job.deadline for job in running.values()) - time.monotonic())
        if heartbeat:
            timeout = min(timeout, heartbeat.every)
        with contextlib.suppress(queue.Empty):
            done.get(timeout=timeout)
        if heartbeat:
            heartbeat.maybe()
        now = time.monotonic()
        for index, job in list(running.items()):
            if job.finished or now >= job.deadline:
                finished[index] = job.result()
                del running[index]


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
