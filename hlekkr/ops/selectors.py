"""Reads for health, metrics, alerts, the status page and doctor.

ops is the roof: it reads every app's models directly. The rate-limit reads alone keep a fallback (the 429s in
the request stats) so that alert does not go blind when the monitor's selector fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from analysis.models import Analysis, AnalysisStatus, BedrockCall, DetectorResult
from hlekkr.ops.models import AlertKind, AlertRule, QueueDepthSample, RequestMinute
from hlekkr.ops.stats import merge_buckets, percentile_from_buckets
from hlekkr.webhooks.models import DeliveryStatus, WebhookDelivery
from ratelimit import selectors as ratelimit_selectors
from review.models import OPEN_STATUSES, Priority, ReviewItem


# --- review queue ---------------------------------------------------------------------------------------
def review_queue_snapshot() -> dict[str, Any]:
    """Items awaiting a decision (pending, assigned, escalated) by priority, and SLA breaches."""
    open_items = ReviewItem.objects.filter(status__in=OPEN_STATUSES, is_gold_probe=False).order_by()
    by_priority = dict.fromkeys(Priority.values, 0)
    for priority, count in open_items.values_list("priority").annotate(n=Count("pk")):
        by_priority[str(priority)] = count
    breaches = dict.fromkeys(Priority.values, 0)
    overdue = open_items.filter(due_at__lt=timezone.now())
    for priority, count in overdue.values_list("priority").annotate(n=Count("pk")):
        breaches[str(priority)] = count
    return {
        "total": sum(by_priority.values()),
        "by_priority": by_priority,
        "breaches_by_priority": breaches,
        "sla_breaches": sum(breaches.values()),
    }


def queue_depth_period_averages(
    *, window_minutes: int, periods: int, now: datetime | None = None
) -> list[float | None]:
    """Average sampled depth in each of the last `periods` windows, newest first (None: no sample in it)."""
    now = now or timezone.now()
    out: list[float | None] = []
    for index in range(periods):
        end = now - timedelta(minutes=window_minutes * index)
        start = end - timedelta(minutes=window_minutes)
        totals = list(
            QueueDepthSample.objects.filter(sampled_at__gt=start, sampled_at__lte=end).values_list("total", flat=True)
        )
        out.append(sum(totals) / len(totals) if totals else None)
    return out


# --- analyses -------------------------------------------------------------------------------------------
def stuck_after() -> timedelta:
    rule = AlertRule.objects.filter(kind=AlertKind.STUCK_ANALYSES).first()
    if rule is not None and rule.window_minutes:
        return timedelta(minutes=rule.window_minutes)
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


def stuck_analyses_count() -> int:
    cutoff = timezone.now() - stuck_after()
    return Analysis.objects.filter(status=AnalysisStatus.RUNNING, started_at__lt=cutoff).count()


def stuck_analyses(limit: int = 10) -> list[str]:
    cutoff = timezone.now() - stuck_after()
    rows = Analysis.objects.filter(status=AnalysisStatus.RUNNING, started_at__lt=cutoff).order_by("started_at")
    return [str(pk) for pk in rows.values_list("id", flat=True)[:limit]]


# --- requests -------------------------------------------------------------------------------------------
def request_window(*, minutes: int, now: datetime | None = None, routes: Any = None) -> dict[str, Any]:
    """Sums over RequestMinute rows of the last `minutes` whole and partial minutes."""
    now = now or timezone.now()
    rows = RequestMinute.objects.filter(minute__gte=(now - timedelta(minutes=minutes)).replace(second=0, microsecond=0))
    if routes is not None:
        rows = rows.filter(routes)
    totals = rows.aggregate(
        count=Sum("count"), c2=Sum("count_2xx"), c4=Sum("count_4xx"), c429=Sum("count_429"), c5=Sum("count_5xx")
    )
    buckets = merge_buckets(rows.values_list("latency_buckets", flat=True))
    count = totals["count"] or 0
    return {
        "count": count,
        "count_2xx": totals["c2"] or 0,
        "count_4xx": totals["c4"] or 0,
        "count_429": totals["c429"] or 0,
        "count_5xx": totals["c5"] or 0,
        "error_rate_pct": (100.0 * (totals["c5"] or 0) / count) if count else None,
        "p95_ms": percentile_from_buckets(buckets, 0.95),
    }


UPLOAD_ROUTES_Q = Q(method="POST") & (
    Q(route="api/v1/media/") | (Q(route__startswith="api/v1/media/uploads/") & Q(route__endswith="/complete/"))
)


def upload_window(*, minutes: int, now: datetime | None = None) -> dict[str, Any]:
    """Uploads in the window: success = 2xx, failure = 5xx (Hlekkr failed an upload it should have taken).

    A 4xx is the client's file or request being refused (wrong type, too large, corrupt): counted as `refused`,
    outside the success rate, so a client sending bad files cannot page the operator. 429s belong to the
    rate-limit monitor."""
    stats = request_window(minutes=minutes, now=now, routes=UPLOAD_ROUTES_Q)
    failures = stats["count_5xx"]
    refused = stats["count_4xx"] - stats["count_429"]
    attempts = stats["count_2xx"] + failures
    return {
        "attempts": attempts,
        "successes": stats["count_2xx"],
        "failures": failures,
        "refused": refused,
        "success_rate_pct": (100.0 * stats["count_2xx"] / attempts) if attempts else None,
    }


# --- rate limits, webhooks, Bedrock ------------------------------------------------------------------------
def ratelimit_refusals_last_hour() -> int:
    """429s in the last hour, from the rate-limit monitor's per-minute rows."""
    return ratelimit_selectors.refusals_last_hour()


def ratelimit_top_offenders(limit: int = 5) -> list[dict[str, Any]]:
    return ratelimit_selectors.top_offenders(hours=1, limit=limit)


def format_offender(offender: dict[str, Any]) -> str:
    return f"{offender['key']} ({offender['refused']} refused)"


def webhook_deliveries_by_status(hours: int = 1) -> dict[str, int]:
    """Deliveries attempted in the last `hours`, by status."""
    rows = WebhookDelivery.objects.order_by().filter(last_attempt_at__gte=timezone.now() - timedelta(hours=hours))
    return {str(status): n for status, n in rows.values_list("status").annotate(n=Count("pk"))}


def webhook_failures_last_hour() -> int:
    counts = webhook_deliveries_by_status()
    return sum(n for status, n in counts.items() if status in (DeliveryStatus.FAILED, DeliveryStatus.GIVEN_UP))


def bedrock_usage_last_day() -> dict[str, Any]:
    """Calls and errors from the bedrock detector's results; spend from the recorded Bedrock calls."""
    since = timezone.now() - timedelta(days=1)
    counts = DetectorResult.objects.filter(detector="bedrock", created_at__gte=since).aggregate(
        calls=Count("id"), errors=Count("id", filter=Q(status="error"))
    )
    total = BedrockCall.objects.filter(created_at__gte=since).aggregate(s=Sum("cost_usd"))["s"]
    return {"calls": counts["calls"], "errors": counts["errors"], "spend_usd": float(total or 0)}


# --- time series for the status page ---------------------------------------------------------------------
def hourly_series(hours: int = 24) -> dict[str, list[tuple[datetime, float]]]:
    """Per hour over the last `hours`: queue depth (mean of samples), analyses finished, request error rate."""
    now = timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    slots = [start + timedelta(hours=i) for i in range(hours)]

    depth: dict[datetime, list[int]] = {}
    for sampled_at, total in QueueDepthSample.objects.filter(sampled_at__gte=start).values_list("sampled_at", "total"):
        depth.setdefault(sampled_at.replace(minute=0, second=0, microsecond=0), []).append(total)

    rows = (
        Analysis.objects.filter(finished_at__gte=start)
        .annotate(hour=TruncHour("finished_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("pk"))
    )
    finished: dict[datetime, int] = dict(rows)

    per_hour: dict[datetime, tuple[int, int]] = {}
    rows2 = (
        RequestMinute.objects.filter(minute__gte=start)
        .annotate(hour=TruncHour("minute"))
        .order_by()
        .values_list("hour")
        .annotate(n=Sum("count"), e=Sum("count_5xx"))
    )
    per_hour = {hour: (n or 0, e or 0) for hour, n, e in rows2}

    def mean(values: list[int] | None) -> float:
        return sum(values) / len(values) if values else 0.0

    return {
        "queue_depth": [(slot, mean(depth.get(slot))) for slot in slots],
        "analyses_finished": [(slot, float(finished.get(slot, 0))) for slot in slots],
        "error_rate_pct": [
            (slot, 100.0 * per_hour[slot][1] / per_hour[slot][0] if per_hour.get(slot, (0, 0))[0] else 0.0)
            for slot in slots
        ],
        "requests": [(slot, float(per_hour.get(slot, (0, 0))[0])) for slot in slots],
    }
