"""Evaluating the alert rules against stored metrics. One function per kind; each returns an Evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from hlekkr.ops import selectors
from hlekkr.ops.checks import HEARTBEAT_STALE_AFTER, worker_queue_state
from hlekkr.ops.models import AlertKind, AlertRule


@dataclass(frozen=True)
class Evaluation:
    firing: bool
    value: float | None  # None: not enough data to judge (the rule stays quiet, an open alert resolves)
    message: str


def _queue_depth(rule: AlertRule, now: datetime) -> Evaluation:
    averages = selectors.queue_depth_period_averages(
        window_minutes=rule.window_minutes, periods=max(rule.periods, 1), now=now
    )
    if any(a is None for a in averages):
        return Evaluation(False, None, "not enough queue-depth samples yet")
    values = [a for a in averages if a is not None]
    firing = all(rule.breached(a) for a in values)
    shown = ", ".join(f"{a:.0f}" for a in reversed(values))
    return Evaluation(
        firing,
        values[0],
        f"review queue depth averaged {shown} over {len(values)} consecutive {rule.window_minutes}-minute periods "
        f"(threshold {rule.threshold:g})",
    )


def _error_rate(rule: AlertRule, now: datetime) -> Evaluation:
    window = selectors.request_window(minutes=rule.window_minutes, now=now)
    if window["count"] < max(rule.min_count, 1):
        return Evaluation(False, None, f"only {window['count']} requests in {rule.window_minutes} min")
    rate = window["error_rate_pct"] or 0.0
    return Evaluation(
        rule.breached(rate),
        rate,
        f"{window['count_5xx']} of {window['count']} requests failed with 5xx ({rate:.2f} %) "
        f"in the last {rule.window_minutes} min (threshold {rule.threshold:g} %)",
    )


def _p95(rule: AlertRule, now: datetime) -> Evaluation:
    window = selectors.request_window(minutes=rule.window_minutes, now=now)
    if window["count"] < max(rule.min_count, 1) or window["p95_ms"] is None:
        return Evaluation(False, None, f"only {window['count']} requests in {rule.window_minutes} min")
    p95 = float(window["p95_ms"])
    return Evaluation(
        rule.breached(p95),
        p95,
        f"p95 latency {p95:.0f} ms over {window['count']} requests in the last {rule.window_minutes} min "
        f"(threshold {rule.threshold:g} ms)",
    )


def _stuck(rule: AlertRule, now: datetime) -> Evaluation:
    count = selectors.stuck_analyses_count()
    ids = selectors.stuck_analyses(limit=5) if count else []
    return Evaluation(
        rule.breached(count),
        float(count),
        f"{count} analyses running for more than {rule.window_minutes} min" + (f": {', '.join(ids)}" if ids else ""),
    )


def _upload_success(rule: AlertRule, now: datetime) -> Evaluation:
    window = selectors.upload_window(minutes=rule.window_minutes, now=now)
    if window["attempts"] < max(rule.min_count, 1) or window["success_rate_pct"] is None:
        return Evaluation(False, None, f"only {window['attempts']} uploads in {rule.window_minutes} min")
    rate = float(window["success_rate_pct"])
    return Evaluation(
        rule.breached(rate),
        rate,
        f"{window['successes']} of {window['attempts']} uploads succeeded ({rate:.2f} %) in the last "
        f"{rule.window_minutes} min (threshold {rule.threshold:g} %)",
    )


def _refusals(rule: AlertRule, now: datetime) -> Evaluation:
    count = selectors.ratelimit_refusals_last_hour()
    offenders = selectors.ratelimit_top_offenders(limit=3)
    tail = f"; top: {', '.join(selectors.format_offender(o) for o in offenders)}" if offenders else ""
    return Evaluation(rule.breached(count), float(count), f"{count} rate-limit refusals in the last hour{tail}"[:450])


def _heartbeat(rule: AlertRule, now: datetime) -> Evaluation:
    state = worker_queue_state()
    stale_after = max(rule.window_minutes * 60, HEARTBEAT_STALE_AFTER.total_seconds())
    missing = []
    for queue, info in state.items():
        last = info["last_seen"]
        if last is None or (now - datetime.fromisoformat(last)).total_seconds() > stale_after:
            missing.append(queue)
    return Evaluation(
        rule.breached(len(missing)),
        float(len(missing)),
        f"no worker heartbeat for {rule.window_minutes} min on: {', '.join(missing)}"
        if missing
        else "every worker queue has a fresh heartbeat",
    )


EVALUATORS: dict[str, Callable[[AlertRule, datetime], Evaluation]] = {
    AlertKind.REVIEW_QUEUE_DEPTH: _queue_depth,
    AlertKind.API_ERROR_RATE: _error_rate,
    AlertKind.API_P95_LATENCY: _p95,
    AlertKind.STUCK_ANALYSES: _stuck,
    AlertKind.UPLOAD_SUCCESS_RATE: _upload_success,
    AlertKind.RATELIMIT_REFUSALS: _refusals,
    AlertKind.WORKER_HEARTBEAT: _heartbeat,
}


def evaluate(rule: AlertRule, now: datetime | None = None) -> Evaluation:
    return EVALUATORS[rule.kind](rule, now or timezone.now())
