"""In-process request statistics, flushed to RequestMinute every few seconds.

The hot path only touches a dict under a lock; a database write happens at most once per FLUSH_SECONDS per
process (from whichever request crosses the interval), as one bulk insert.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from hlekkr.ops.models import LATENCY_BOUNDS_MS

logger = logging.getLogger(__name__)


@dataclass
class _Bucket:
    count: int = 0
    count_2xx: int = 0
    count_4xx: int = 0
    count_429: int = 0
    count_5xx: int = 0
    latency_sum_ms: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def add(self, status: int, duration_ms: float) -> None:
        self.count += 1
        if 200 <= status < 300:
            self.count_2xx += 1
        elif 400 <= status < 500:
            self.count_4xx += 1
            if status == 429:
                self.count_429 += 1
        elif status >= 500:
            self.count_5xx += 1
        self.latency_sum_ms += duration_ms
        self.latency_buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)] += 1


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[datetime, str, str], _Bucket] = {}
        self._last_flush = time.monotonic()

    def record(self, *, route: str, method: str, status: int, duration_ms: float, at: datetime | None = None) -> None:
        minute = (at or timezone.now()).replace(second=0, microsecond=0)
        with self._lock:
            bucket = self._pending.get((minute, route, method))
            if bucket is None:
                bucket = self._pending[(minute, route, method)] = _Bucket()
            bucket.add(status, duration_ms)
            due = time.monotonic() - self._last_flush >= flush_seconds()
        if due:
            self.flush()

    def flush(self) -> int:
        """Write what is pending as RequestMinute rows; returns how many rows. Never raises."""
        from hlekkr.ops.models import RequestMinute

        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return 0
        rows = [
            RequestMinute(
                minute=minute,
                route=route[:200],
                method=method[:8],
                count=b.count,
                count_2xx=b.count_2xx,
                count_4xx=b.count_4xx,
                count_429=b.count_429,
                count_5xx=b.count_5xx,
                latency_sum_ms=b.latency_sum_ms,
                latency_buckets=b.latency_buckets,
            )
            for (minute, route, method), b in pending.items()
        ]
        try:
            RequestMinute.objects.bulk_create(rows)
        except Exception:
            # Telemetry must not break requests; a lost window shows as a gap, and the log says why.
            logger.exception("could not flush %d request-stat rows", len(rows))
            return 0
        return len(rows)

    def pending_count(self) -> int:
        with self._lock:
            return sum(b.count for b in self._pending.values())


def flush_seconds() -> float:
    return float(getattr(settings, "HLEKKR_REQUEST_STATS_FLUSH_SECONDS", 10))


request_stats = RequestStats()


def _flush_at_exit() -> None:
    # Off under the test runner: at exit the test database is gone, and the connection would fall back to the
    # real database's name.
    if getattr(settings, "HLEKKR_REQUEST_STATS_FLUSH_AT_EXIT", True):
        request_stats.flush()


atexit.register(_flush_at_exit)


def percentile_from_buckets(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of latencies in ms, interpolated linearly inside the bucket that holds it."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(buckets):
        if count and cumulative + count >= rank:
            lower = 0.0 if index == 0 else float(LATENCY_BOUNDS_MS[index - 1])
            if index >= len(LATENCY_BOUNDS_MS):
                return lower  # the open-ended bucket: report its lower bound
            upper = float(LATENCY_BOUNDS_MS[index])
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return float(LATENCY_BOUNDS_MS[-1])


def merge_buckets(rows: Any) -> list[int]:
    merged = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for buckets in rows:
        for i, value in enumerate(buckets or []):
            if i < len(merged):
                merged[i] += int(value)
    return merged
