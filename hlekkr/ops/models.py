"""Operational records: worker heartbeats, stored request and queue metrics, alert rules and alerts.

Metrics that alerts read are stored here (not only in-process Prometheus counters, which reset on restart and
live in one process each): the request-stats middleware flushes per-route, per-minute aggregates into
RequestMinute, and the beat task samples the review queue into QueueDepthSample.
"""

from __future__ import annotations

from django.db import models

# Upper bounds (ms) of the request latency buckets stored in RequestMinute.latency_buckets; the last bucket
# is everything slower. 500 ms is a boundary, so "p95 > 500 ms" is exact rather than interpolated.
LATENCY_BOUNDS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class WorkerHeartbeat(models.Model):
    """The last time a worker on `hostname` ran a heartbeat task taken from `queue`."""

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=32)
    last_seen = models.DateTimeField(db_index=True)
    # On the analysis queues: the required detectors this worker could not load, name -> error ({} = all loaded;
    # null = not reported). Readiness on web nodes reads it instead of importing the detectors itself.
    detector_errors = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hostname", "queue"], name="one_heartbeat_per_worker_queue")]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue} at {self.last_seen:%H:%M:%S}"


class RequestMinute(models.Model):
    """Requests to one route with one method in one minute, as flushed by one process.

    Insert-only: several processes (and several flushes of one process) may write rows for the same minute and
    route; readers sum them. That keeps the hot path free of read-modify-write contention.
    """

    minute = models.DateTimeField(db_index=True)
    route = models.CharField(max_length=200)
    method = models.CharField(max_length=8)
    count = models.PositiveIntegerField(default=0)
    count_2xx = models.PositiveIntegerField(default=0)
    count_4xx = models.PositiveIntegerField(default=0)
    count_429 = models.PositiveIntegerField(default=0)
    count_5xx = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_buckets = models.JSONField(default=list)  # len(LATENCY_BOUNDS_MS) + 1 counts

    class Meta:
        indexes = [models.Index(fields=["route", "minute"])]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.method} {self.route}: {self.count}"


class QueueDepthSample(models.Model):
    """Review items awaiting a decision, sampled every minute by the beat task."""

    sampled_at = models.DateTimeField(db_index=True)
    total = models.PositiveIntegerField(default=0)
    by_priority = models.JSONField(default=dict)  # priority -> count
    sla_breaches = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-sampled_at"]

    def __str__(self) -> str:
        return f"{self.sampled_at:%Y-%m-%d %H:%M} depth {self.total}"


class AlertKind(models.TextChoices):
    REVIEW_QUEUE_DEPTH = "review_queue_depth", "Review queue depth"
    API_ERROR_RATE = "api_error_rate", "API error rate (5xx %)"
    API_P95_LATENCY = "api_p95_latency", "API p95 latency (ms)"
    STUCK_ANALYSES = "stuck_analyses", "Analyses stuck in running"
    UPLOAD_SUCCESS_RATE = "upload_success_rate", "Upload success rate (%)"
    RATELIMIT_REFUSALS = "ratelimit_refusals", "Rate-limit refusals per hour"
    WORKER_HEARTBEAT = "worker_heartbeat", "Worker queues without a heartbeat"


class Comparison(models.TextChoices):
    GREATER = "gt", "fires when the value is greater than the threshold"
    LESS = "lt", "fires when the value is less than the threshold"


class AlertRule(models.Model):
    """One of the guide's alerts with its thresholds, edited in admin (tuning lives in the database)."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices, unique=True)
    enabled = models.BooleanField(default=True)
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GREATER)
    threshold = models.FloatField()
    window_minutes = models.PositiveIntegerField(default=5, help_text="length of one evaluation period")
    periods = models.PositiveSmallIntegerField(default=1, help_text="consecutive periods that must all breach")
    min_count = models.PositiveIntegerField(
        default=0, help_text="rates only: below this many requests in the window the rule stays quiet"
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        symbol = ">" if self.comparison == Comparison.GREATER else "<"
        return f"{self.get_kind_display()} {symbol} {self.threshold:g}"

    def breached(self, value: float) -> bool:
        return value > self.threshold if self.comparison == Comparison.GREATER else value < self.threshold


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """An alert that opened when its rule breached and resolves when the rule holds again."""

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    opened_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)  # the value that opened it
    last_value = models.FloatField(null=True, blank=True)  # the latest evaluation while open
    message = models.CharField(max_length=500)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_attempts = models.PositiveSmallIntegerField(default=0)
    notification_error = models.CharField(max_length=500, blank=True)
    resolved_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one open alert per rule: a second evaluation while open updates, never duplicates.
            models.UniqueConstraint(fields=["rule"], condition=models.Q(status="open"), name="one_open_alert_per_rule")
        ]

    def __str__(self) -> str:
        return f"{self.rule.kind} {self.status} since {self.opened_at:%Y-%m-%d %H:%M}"
