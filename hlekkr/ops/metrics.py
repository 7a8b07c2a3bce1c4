"""Prometheus metrics: in-process request instruments plus database-derived gauges collected at scrape time.

With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (an empty directory shared by the workers of one
node) so a scrape sees every worker's counters; otherwise each scrape sees the process that answers it. The
database-derived families are the same whichever process answers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Max, Q
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "hlekkr_http_request_duration_seconds",
    "Request latency by route pattern and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "hlekkr_http_requests", "Requests by route pattern, method and status class", ["route", "method", "status_class"]
)
UPLOADS = Counter(
    "hlekkr_uploads", "Upload requests by outcome (success 2xx, refused 4xx except 429, failure 5xx)", ["outcome"]
)

# The media upload routes: the direct upload and the completion of a multipart upload.
UPLOAD_ROUTES = (re.compile(r"^api/v1/media/$"), re.compile(r"^api/v1/media/uploads/[^/]+/complete/$"))


def is_upload(route: str, method: str) -> bool:
    return method == "POST" and any(p.match(route) for p in UPLOAD_ROUTES)


def upload_outcome(status: int) -> str | None:
    """success (2xx), refused (4xx: the client's file or request), failure (5xx), or None for a 429 (counted
    by the rate-limit metrics, not an upload)."""
    if status == 429:
        return None
    if 200 <= status < 300:
        return "success"
    if 400 <= status < 500:
        return "refused"
    if status >= 500:
        return "failure"
    return None


# labels() hashes and validates on every call; the children are cached per label set (routes are patterns,
# so the set is bounded by the URLconf).
_latency_children: dict[tuple[str, str], Any] = {}
_request_children: dict[tuple[str, str, str], Any] = {}


def observe_request(*, route: str, method: str, status: int, duration_s: float) -> None:
    latency = _latency_children.get((route, method))
    if latency is None:
        latency = _latency_children[(route, method)] = REQUEST_LATENCY.labels(route=route, method=method)
    latency.observe(duration_s)
    key = (route, method, f"{status // 100}xx")
    counter = _request_children.get(key)
    if counter is None:
        counter = _request_children[key] = REQUESTS.labels(route=route, method=method, status_class=key[2])
    counter.inc()
    if is_upload(route, method):
        outcome = upload_outcome(status)
        if outcome:
            UPLOADS.labels(outcome=outcome).inc()


class DatabaseCollector(Collector):
    """Cheap aggregate queries run at scrape time. Each family is skipped (and logged) if its table is absent."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for produce in (
            self._review_queue,
            self._analyses,
            self._detectors,
            self._workers,
            self._alerts,
            self._ratelimit,
            self._webhooks,
            self._bedrock,
        ):
            try:
                yield from produce()
            except Exception:  # one missing table must not blank the whole scrape
                logger.warning("metrics family %s skipped", produce.__name__, exc_info=True)

    def _review_queue(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops import selectors

        depth = GaugeMetricFamily(
            "hlekkr_review_queue_depth", "Review items awaiting a decision, by priority", labels=["priority"]
        )
        breaches = GaugeMetricFamily(
            "hlekkr_review_sla_breaches", "Review items awaiting a decision past their due time", labels=["priority"]
        )
        snapshot = selectors.review_queue_snapshot()
        for priority, count in snapshot["by_priority"].items():
            depth.add_metric([priority], count)
        for priority, count in snapshot["breaches_by_priority"].items():
            breaches.add_metric([priority], count)
        yield depth
        yield breaches

    def _analyses(self) -> Iterator[GaugeMetricFamily]:
        from analysis.models import Analysis

        by_status = GaugeMetricFamily("hlekkr_analyses", "Analyses by status", labels=["status"])
        for status, count in Analysis.objects.order_by().values_list("status").annotate(n=Count("id")):
            by_status.add_metric([status], count)
        yield by_status
        since = timezone.now() - timedelta(hours=1)
        finished = GaugeMetricFamily(
            "hlekkr_analyses_finished_last_hour", "Analyses finished in the last hour (throughput)", labels=["status"]
        )
        rows = Analysis.objects.filter(finished_at__gte=since).order_by().values_list("status").annotate(n=Count("id"))
        for status, count in rows:
            finished.add_metric([status], count)
        yield finished
        from hlekkr.ops import selectors

        stuck = GaugeMetricFamily("hlekkr_analyses_stuck", "Analyses running past their time limit")
        stuck.add_metric([], selectors.stuck_analyses_count())
        yield stuck

    def _detectors(self) -> Iterator[GaugeMetricFamily]:
        from analysis.models import DetectorResult

        since = timezone.now() - timedelta(hours=1)
        rows = (
            DetectorResult.objects.filter(created_at__gte=since)
            .order_by()
            .values("detector")
            .annotate(
                runs=Count("id"),
                errors=Count("id", filter=Q(status="error")),
                avg_ms=Avg("duration_ms"),
                max_ms=Max("duration_ms"),
            )
        )
        avg = GaugeMetricFamily(
            "hlekkr_detector_duration_seconds_avg", "Mean detector duration, last hour", labels=["detector"]
        )
        peak = GaugeMetricFamily(
            "hlekkr_detector_duration_seconds_max", "Longest detector duration, last hour", labels=["detector"]
        )
        runs = GaugeMetricFamily("hlekkr_detector_runs_last_hour", "Detector results, last hour", labels=["detector"])
        errors = GaugeMetricFamily(
            "hlekkr_detector_errors_last_hour", "Detector results with status error, last hour", labels=["detector"]
        )
        for row in rows:
            labels = [row["detector"]]
            avg.add_metric(labels, (row["avg_ms"] or 0) / 1000)
            peak.add_metric(labels, (row["max_ms"] or 0) / 1000)
            runs.add_metric(labels, row["runs"])
            errors.add_metric(labels, row["errors"])
        yield from (avg, peak, runs, errors)

    def _workers(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops.checks import worker_queue_state

        family = GaugeMetricFamily(
            "hlekkr_worker_queue_heartbeat_fresh",
            "1 when a worker on the queue reported in 2 minutes",
            labels=["queue"],
        )
        for queue, state in worker_queue_state().items():
            family.add_metric([queue], 1 if state["fresh"] else 0)
        yield family

    def _alerts(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops.models import Alert, AlertStatus

        family = GaugeMetricFamily("hlekkr_alerts_open", "Open alerts by rule", labels=["rule"])
        rows = Alert.objects.filter(status=AlertStatus.OPEN).values_list("rule__kind").annotate(n=Count("id"))
        for kind, count in rows:
            family.add_metric([kind], count)
        yield family

    def _ratelimit(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops import selectors

        family = GaugeMetricFamily("hlekkr_ratelimit_refusals_last_hour", "Requests refused with 429 in the last hour")
        family.add_metric([], selectors.ratelimit_refusals_last_hour())
        yield family

    def _webhooks(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops import selectors

        counts = selectors.webhook_deliveries_by_status()
        family = GaugeMetricFamily(
            "hlekkr_webhook_deliveries_last_hour", "Webhook deliveries touched in the last hour", labels=["status"]
        )
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family

    def _bedrock(self) -> Iterator[GaugeMetricFamily]:
        from hlekkr.ops import selectors

        usage = selectors.bedrock_usage_last_day()
        calls = GaugeMetricFamily("hlekkr_bedrock_calls_last_day", "Bedrock detector runs, last 24 h")
        errors = GaugeMetricFamily("hlekkr_bedrock_errors_last_day", "Bedrock detector errors, last 24 h")
        calls.add_metric([], usage["calls"])
        errors.add_metric([], usage["errors"])
        yield calls
        yield errors
        spend = GaugeMetricFamily("hlekkr_bedrock_spend_usd_last_day", "Bedrock spend in USD, last 24 h")
        spend.add_metric([], usage["spend_usd"])
        yield spend


def render() -> bytes:
    """The exposition for one scrape: every in-process instrument on the default registry (ours, the rate
    limiter's, process memory/CPU: the guide's "memory utilization"), or the multiprocess aggregate when
    PROMETHEUS_MULTIPROC_DIR is set, followed by the database-derived gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import PlatformCollector, ProcessCollector, multiprocess

        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
        # The aggregate holds only the instruments' files: the answering process's memory and CPU (the
        # guide's memory utilization, docs/operations.md) would otherwise vanish from every scrape.
        ProcessCollector(registry=process_registry)
        PlatformCollector(registry=process_registry)
    else:
        process_registry = REGISTRY
    database_registry = CollectorRegistry()
    database_registry.register(DatabaseCollector())
    return generate_latest(process_registry) + generate_latest(database_registry)
