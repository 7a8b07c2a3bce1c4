"""The fault experiments themselves, shared by the bounded tests and scripts/fault_trials.py.

Each experiment drives a running `Stack` (stack.py), injects its fault at random moments and returns a report of
what it saw; the callers assert on the report (tests) or print it (the script).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

from tests.reliability.stack import Stack, wait_until

# "An interrupted analysis completes within 60 s of a worker being available again" (issue 14).
RECOVERY_TARGET_S = 60.0


def small_png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A noise PNG: at 64x48 every detector that applies runs in about 0.3 s."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")).save(out, "PNG")
    return out.getvalue()


# Kill trials use larger images (about 1 s of analysis) so that a fault often lands while one runs.
TRIAL_IMAGE_SIZE = (320, 240)


class WebhookReceiver:
    """A loopback HTTP server that records every webhook delivery it is sent (and answers 204)."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body or b"{}")
                with receiver._lock:
                    receiver.deliveries.append(
                        {
                            "delivery_id": self.headers.get("Hlekkr-Delivery"),
                            "type": event.get("type"),
                            "event_id": event.get("id"),
                            "analysis_id": (event.get("data") or {}).get("analysis_id"),
                        }
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def by_analysis(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self._lock:
            for delivery in self.deliveries:
                if delivery["type"] == "analysis.completed":
                    grouped[delivery["analysis_id"]].append(delivery)
        return grouped

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class KillReport:
    fault: str
    trials: int
    uploads: int = 0
    interrupted: int = 0  # analyses running at the moment of a fault
    problems: list[str] = field(default_factory=list)
    recovery_s: list[float] = field(default_factory=list)  # per interrupted analysis: worker back -> completed
    seconds: float = 0.0
    faults_done_s: float = 0.0

    def summary(self) -> str:
        worst = f"{max(self.recovery_s):.1f}" if self.recovery_s else "-"
        return (
            f"{self.fault}: {self.trials} trials, {self.uploads} uploads, {self.interrupted} analyses interrupted, "
            f"slowest recovery {worst} s (target {RECOVERY_TARGET_S:.0f} s), {len(self.problems)} problems, "
            f"{self.seconds:.0f} s ({self.faults_done_s:.0f} s injecting)"
        )


def _running_analyses(stack: Stack, below_attempts: int = 1000) -> set[str]:
    rows = stack.pg.sql(
        "SELECT id::text FROM analysis_analysis WHERE status = 'running' AND attempts < %s", below_attempts
    )
    return {row[0] for row in rows}


def _queued_count(stack: Stack) -> int:
    return stack.count("SELECT count(*) FROM analysis_analysis WHERE status = 'queued'")


def _ready_count(stack: Stack, name: str) -> int:
    return (stack.root / f"{name}.log").read_text(errors="replace").count(" ready.")


def inject(stack: Stack, fault: str, rng: random.Random, worker: str = "worker") -> None:
    """pool: SIGKILL one pool process; worker: SIGKILL the worker and its pool; term: SIGTERM (warm shutdown)."""
    main = wait_until(lambda: stack.worker_main_pid(worker), timeout=60, what="a worker main process")
    if fault == "pool":
        pool = wait_until(lambda: stack.pool_pids(worker), timeout=60, what="pool processes")
        os.kill(rng.choice(pool), signal.SIGKILL)
    elif fault == "worker":
        os.killpg(main, signal.SIGKILL)  # the supervisor started it in a group of its own
    elif fault == "term":
        os.kill(main, signal.SIGTERM)
    else:
        raise ValueError(fault)


def run_kill_trials(stack: Stack, receiver: WebhookReceiver, *, fault: str, trials: int, seed: int = 0) -> KillReport:
    """`trials` faults at random moments while analyses run, then wait for every analysis and check exactly-once
    completion and webhook delivery. Faults alternate between the stack's workers, so they overlap: while one
    worker is restarting, the other carries the work and takes the next fault."""
    rng = random.Random(f"{seed}-{fault}")  # each experiment its own images: same bytes would be duplicates
    report = KillReport(fault=fault, trials=trials)
    started = time.monotonic()
    media_ids: list[str] = []
    interrupted_at: dict[str, float] = {}  # analysis id -> when a worker was available after its last fault
    seed_base = rng.randrange(1_000_000_000)
    workers = stack.worker_names()
    ready_needed = {name: _ready_count(stack, name) for name in workers}
    for trial in range(trials):
        worker = workers[trial % len(workers)]
        # Each fault hits a worker that is up (ready since its last fault), at a moment an analysis runs.
        wait_until(lambda w=worker: _ready_count(stack, w) >= ready_needed[w], timeout=120, what=f"{worker} ready")
        # Uploads at the workers' pace: a backlog would make a re-queued analysis wait behind it, and the 60 s
        # target is about recovery, not queueing (at 100 unpaced trials one waited 92 s behind 60 others).
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: _queued_count(stack) <= 2, timeout=60, interval=0.1, what="a short queue")
        for n in range(2):
            image = small_png(seed_base + trial * 2 + n, TRIAL_IMAGE_SIZE)
            status, body, _ = stack.upload(image, filename=f"t{trial}-{n}.png")
            report.uploads += 1
            if status != 201 or not isinstance(body, dict):
                report.problems.append(f"trial {trial}: upload answered {status} {body}")
                continue
            media_ids.append(body["id"])
        # A moment an analysis runs on its first or second attempt: analyses give up after 3 attempts by design
        # (a poison pill must not loop), and hitting one three times is the experiment's aim, not the product's.
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: _running_analyses(stack, below_attempts=2), timeout=8, interval=0.02, what="a run")
        time.sleep(rng.uniform(0, 0.3))
        running = _running_analyses(stack)
        inject(stack, fault, rng, worker)
        # pool: the other pool process and the replacement are there at once; worker/term: the other worker is.
        available_at = time.time()
        if fault in ("worker", "term"):
            ready_needed[worker] = _ready_count(stack, worker) + 1
        # Measured from the last fault that hit an analysis: with overlapping faults the worker that took over an
        # interrupted analysis may itself be the next one killed.
        report.interrupted += len(running - set(interrupted_at))
        for analysis_id in running:
            interrupted_at[analysis_id] = available_at
    report.faults_done_s = time.monotonic() - started
    _settle(stack, receiver, media_ids, report, interrupted_at)
    report.seconds = time.monotonic() - started
    return report


def _settle(
    stack: Stack, receiver: WebhookReceiver, media_ids: list[str], report: KillReport, interrupted_at: dict[str, float]
) -> None:
    wanted = set(media_ids)

    def finished() -> bool:
        rows = [a for a in stack.analyses() if a["media_id"] in wanted]
        return len({a["media_id"] for a in rows}) == len(wanted) and all(
            a["status"] in ("completed", "failed") for a in rows
        )

    try:
        wait_until(finished, timeout=RECOVERY_TARGET_S + 60, interval=0.5, what="every analysis to finish")
    except TimeoutError:
        stuck = [a for a in stack.analyses() if a["media_id"] in wanted and a["status"] not in ("completed", "failed")]
        report.problems.append(
            f"{len(stuck)} analyses unfinished {RECOVERY_TARGET_S + 60:.0f} s after the last fault: "
            + ", ".join(f"{a['id']} {a['status']} attempts={a['attempts']}" for a in stuck[:5])
        )
    rows = [a for a in stack.analyses() if a["media_id"] in wanted]
    per_media: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        per_media[row["media_id"]].append(row)
    for media_id in wanted:
        runs = per_media.get(media_id, [])
        if len(runs) != 1:
            report.problems.append(f"media {media_id} has {len(runs)} analyses (want exactly 1)")
    for row in rows:
        if row["status"] != "completed":
            report.problems.append(f"analysis {row['id']} ended {row['status']}")
        finished_at: datetime | None = row["finished_at"]
        if row["id"] in interrupted_at and finished_at is not None:
            report.recovery_s.append(max(0.0, finished_at.timestamp() - interrupted_at[row["id"]]))
    ids = [row["id"] for row in rows]
    completed_events = dict(
        stack.pg.sql(
            "SELECT object_id, count(*) FROM audit_auditevent WHERE action = 'analysis.completed' "
            "AND object_id = ANY(%s) GROUP BY object_id",
            ids,
        )
    )
    for analysis_id in ids:
        if completed_events.get(analysis_id, 0) != 1:
            report.problems.append(f"analysis {analysis_id}: {completed_events.get(analysis_id, 0)} analysis.completed")
    duplicates = stack.pg.sql(
        "SELECT analysis_id::text, detector, count(*) FROM analysis_detectorresult WHERE analysis_id::text = ANY(%s) "
        "GROUP BY 1, 2 HAVING count(*) > 1",
        ids,
    )
    report.problems.extend(f"analysis {a}: {n} results from {d}" for a, d, n in duplicates)
    slow = [s for s in report.recovery_s if s > RECOVERY_TARGET_S]
    if slow:
        report.problems.append(f"{len(slow)} interrupted analyses took longer than the target: {sorted(slow)[-3:]}")
    _check_webhooks(stack, receiver, ids, report)


def _check_webhooks(stack: Stack, receiver: WebhookReceiver, ids: list[str], report: KillReport) -> None:
    def delivered() -> bool:
        got = receiver.by_analysis()
        return all(analysis_id in got for analysis_id in ids)

    try:
        wait_until(delivered, timeout=90, interval=0.5, what="every analysis.completed webhook")
    except TimeoutError:
        missing = [a for a in ids if a not in receiver.by_analysis()]
        report.problems.append(f"{len(missing)} analysis.completed webhooks never arrived")
    for analysis_id, deliveries in receiver.by_analysis().items():
        if analysis_id not in ids:
            continue
        delivery_ids = {d["delivery_id"] for d in deliveries}
        event_ids = {d["event_id"] for d in deliveries}
        if len(delivery_ids) != 1 or len(event_ids) != 1:
            report.problems.append(
                f"analysis {analysis_id}: webhook sent with {len(delivery_ids)} delivery ids, {len(event_ids)} event ids"
            )


# --- the broker away -------------------------------------------------------------------------------------------
@dataclass
class OutageReport:
    what: str
    outage_s: float
    uploads: int = 0
    answered: dict[int, int] = field(default_factory=dict)  # status -> count
    slowest_upload_s: float = 0.0  # while the dependency was away
    slowest_refusal_s: float = 0.0
    analysed_after_return_s: float | None = None
    problems: list[str] = field(default_factory=list)
    log_tracebacks: int = 0
    worker_restarts: int = 0

    def summary(self) -> str:
        after = f"{self.analysed_after_return_s:.1f} s" if self.analysed_after_return_s is not None else "never"
        return (
            f"{self.what} away {self.outage_s:.0f} s: {self.uploads} uploads answered {dict(sorted(self.answered.items()))}, "
            f"slowest upload while away {self.slowest_upload_s:.2f} s, slowest refusal {self.slowest_refusal_s:.2f} s, "
            f"every stored item analysed {after} after the return, {self.log_tracebacks} tracebacks logged, "
            f"{self.worker_restarts} worker restarts, {len(self.problems)} problems"
        )


def _error_shaped(body: Any) -> bool:
    return isinstance(body, dict) and set(body) == {"code", "message", "details"}


def _upload_and_record(
    stack: Stack, report: OutageReport, seed: int, media_ids: list[str], *, during: bool = True
) -> None:
    status, body, elapsed = stack.upload(small_png(seed), filename=f"outage-{seed}.png")
    report.uploads += 1
    report.answered[status] = report.answered.get(status, 0) + 1
    if status == 201 and isinstance(body, dict):
        media_ids.append(body["id"])
        if during:
            report.slowest_upload_s = max(report.slowest_upload_s, elapsed)
    elif status == 503 and _error_shaped(body):
        report.slowest_refusal_s = max(report.slowest_refusal_s, elapsed)
    else:
        report.problems.append(f"upload answered {status} {str(body)[:200]} in {elapsed:.2f} s")


def _log_text(stack: Stack, name: str) -> str:
    path = stack.root / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def run_broker_outage(stack: Stack, *, outage_s: float, seed: int = 0, analysed_within_s: float = 300) -> OutageReport:
    """Uploads every ~0.3 s before, during and after the broker is stopped for `outage_s` seconds; then every
    stored item must be analysed within `analysed_within_s` of the broker's return."""
    report = OutageReport(what="broker", outage_s=outage_s)
    rng = random.Random(f"{seed}-broker")
    base = rng.randrange(1_000_000_000)
    media_ids: list[str] = []
    logs_before = {name: len(_log_text(stack, name)) for name in ("web", "beat", *stack.worker_names())}
    n = 0
    for _ in range(5):
        _upload_and_record(stack, report, base + n, media_ids, during=False)
        n += 1
    stack.broker.stop()
    away_until = time.monotonic() + outage_s
    while time.monotonic() < away_until:
        _upload_and_record(stack, report, base + n, media_ids)
        n += 1
        time.sleep(0.3)
    stack.broker.start()
    returned = time.monotonic()
    for _ in range(5):
        _upload_and_record(stack, report, base + n, media_ids, during=False)
        n += 1
    wanted = set(media_ids)

    def analysed() -> bool:
        done = {a["media_id"] for a in stack.analyses() if a["status"] == "completed" and a["media_id"] in wanted}
        return done == wanted

    try:
        wait_until(analysed, timeout=analysed_within_s, interval=0.5, what="every stored item analysed")
        report.analysed_after_return_s = time.monotonic() - returned
    except TimeoutError:
        missing = wanted - {a["media_id"] for a in stack.analyses() if a["status"] == "completed"}
        report.problems.append(f"{len(missing)} stored items not analysed {analysed_within_s:.0f} s after the return")
    for name, offset in logs_before.items():
        text = _log_text(stack, name)[offset:]
        report.log_tracebacks += text.count("Traceback (most recent call last)")
        if name.startswith("worker"):
            report.worker_restarts += text.count("restarting in")
            if "Unrecoverable error" in text:
                line = next(ln for ln in text.splitlines() if "Unrecoverable error" in ln)
                report.problems.append(f"worker: {line.strip()[:300]}")
    return report


# --- the cache and PostgreSQL away -----------------------------------------------------------------------------
@dataclass
class ProbeReport:
    what: str
    outage_s: float
    answers: dict[str, dict[int, int]] = field(default_factory=dict)  # probe -> status -> count
    slowest_s: dict[str, float] = field(default_factory=dict)
    recovered_after_s: float | None = None
    analysed_after_return_s: float | None = None
    problems: list[str] = field(default_factory=list)

    def record(self, probe: str, status: int, elapsed: float) -> None:
        counts = self.answers.setdefault(probe, {})
        counts[status] = counts.get(status, 0) + 1
        self.slowest_s[probe] = max(self.slowest_s.get(probe, 0.0), elapsed)

    def summary(self) -> str:
        answers = "; ".join(
            f"{probe} {dict(sorted(counts.items()))} (slowest {self.slowest_s[probe]:.2f} s)"
            for probe, counts in self.answers.items()
        )
        recovered = f"{self.recovered_after_s:.1f} s" if self.recovered_after_s is not None else "never"
        analysed = f"{self.analysed_after_return_s:.1f} s" if self.analysed_after_return_s is not None else "-"
        return (
            f"{self.what} away {self.outage_s:.0f} s: {answers}; requests recovered {recovered} after the return, "
            f"an upload after it analysed in {analysed}; {len(self.problems)} problems"
        )


BAD_LOGIN = b'{"username": "faults", "password": "not-the-password-123"}'


def _probe(stack: Stack, report: ProbeReport, probe: str, seed: int) -> tuple[int, Any]:
    if probe == "read":
        status, body, elapsed = stack.http("GET", "/api/v1/media/", headers=stack.auth())
    elif probe == "upload":
        status, body, elapsed = stack.upload(small_png(seed), filename=f"probe-{seed}.png")
    elif probe == "login":
        status, body, elapsed = stack.http(
            "POST", "/api/v1/auth/token/", body=BAD_LOGIN, headers={"Content-Type": "application/json"}
        )
    elif probe == "liveness":
        status, body, elapsed = stack.http("GET", "/health")
    else:
        raise ValueError(probe)
    report.record(probe, status, elapsed)
    if status >= 400 and probe != "liveness" and not _error_shaped(body):
        report.problems.append(f"{probe}: {status} not in the error shape: {str(body)[:200]}")
    if status == 500 or status == 0:
        report.problems.append(f"{probe}: answered {status} after {elapsed:.2f} s")
    return status, body


def _analysed_soon(stack: Stack, report: ProbeReport, seed: int, within_s: float) -> None:
    status, body, _ = stack.upload(small_png(seed), filename=f"after-{seed}.png")
    if status != 201 or not isinstance(body, dict):
        report.problems.append(f"upload after the return answered {status}")
        return
    started = time.monotonic()
    media_id = body["id"]
    try:
        wait_until(
            lambda: any(a["media_id"] == media_id and a["status"] == "completed" for a in stack.analyses()),
            timeout=within_s,
            interval=0.5,
            what="an upload after the return to be analysed",
        )
        report.analysed_after_return_s = time.monotonic() - started
    except TimeoutError:
        report.problems.append(f"an upload after the return was not analysed within {within_s:.0f} s (worker wedged?)")


def run_cache_outage(stack: Stack, *, outage_s: float, seed: int = 0) -> ProbeReport:
    """docs/ratelimit.md: without the cache, reads and uploads go on (the limiter fails open) and `auth` fails
    closed (429 rate_limit_unavailable); nothing is a 500."""
    report = ProbeReport(what="cache", outage_s=outage_s)
    base = random.Random(f"{seed}-cache").randrange(1_000_000_000)
    stack.cache.stop()
    away_until = time.monotonic() + outage_s
    n = 0
    while time.monotonic() < away_until:
        for probe in ("read", "upload", "login"):
            status, body = _probe(stack, report, probe, base + n)
            n += 1
            expected = {"read": {200}, "upload": {201}, "login": {429}}[probe]
            if status not in expected:
                report.problems.append(f"{probe} while the cache was away: {status} {str(body)[:160]}")
            if (
                probe == "login"
                and status == 429
                and isinstance(body, dict)
                and body.get("code") != "rate_limit_unavailable"
            ):
                report.problems.append(f"login while the cache was away: 429 {body.get('code')}")
        time.sleep(0.2)
    stack.cache.start()
    returned = time.monotonic()

    def login_counts_again() -> bool:
        return _probe(stack, report, "login", 0)[0] == 401

    try:
        wait_until(login_counts_again, timeout=60, interval=1, what="the limiter to use the cache again")
        report.recovered_after_s = time.monotonic() - returned
    except TimeoutError:
        report.problems.append("auth still failed closed 60 s after the cache returned")
    _analysed_soon(stack, report, base + n, within_s=60)
    return report


def run_database_outage(stack: Stack, *, outage_s: float, seed: int = 0) -> ProbeReport:
    """PostgreSQL refusing connections: requests fail fast with 503 in the error shape, liveness stays 200,
    and everything recovers by itself (no web or worker process stays wedged)."""
    report = ProbeReport(what="postgresql", outage_s=outage_s)
    base = random.Random(f"{seed}-postgres").randrange(1_000_000_000)
    stack.pg.stop("fast")
    away_until = time.monotonic() + outage_s
    n = 0
    while time.monotonic() < away_until:
        for probe in ("read", "upload", "liveness"):
            status, body = _probe(stack, report, probe, base + n)
            n += 1
            expected = {"read": {503}, "upload": {503}, "liveness": {200}}[probe]
            if status not in expected:
                report.problems.append(f"{probe} while PostgreSQL was away: {status} {str(body)[:160]}")
        time.sleep(0.2)
    stack.pg.start()
    returned = time.monotonic()
    try:
        wait_until(lambda: _probe(stack, report, "read", 0)[0] == 200, timeout=60, interval=0.5, what="reads")
        report.recovered_after_s = time.monotonic() - returned
    except TimeoutError:
        report.problems.append("reads still failing 60 s after PostgreSQL returned")
    _analysed_soon(stack, report, base + n, within_s=90)
    for probe in ("read", "upload"):
        if report.slowest_s.get(probe, 0) > 5:
            report.problems.append(f"{probe} took {report.slowest_s[probe]:.1f} s while PostgreSQL was away")
    return report
