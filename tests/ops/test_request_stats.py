"""The request-stats middleware: aggregated in process, flushed to RequestMinute at most every few seconds."""

from __future__ import annotations

from typing import Any

import pytest

from hlekkr.ops.models import LATENCY_BOUNDS_MS, RequestMinute
from hlekkr.ops.stats import RequestStats, merge_buckets, percentile_from_buckets, request_stats

pytestmark = pytest.mark.django_db


def test_requests_are_held_in_process_until_the_flush_interval(client: Any) -> None:
    for _ in range(3):
        client.get("/api/v1/no-such-endpoint/")
    assert RequestMinute.objects.count() == 0
    assert request_stats.pending_count() == 3


def test_a_flush_writes_one_row_per_minute_route_and_method(client: Any) -> None:
    for _ in range(3):
        client.get("/api/v1/no-such-endpoint/")
    client.post("/api/v1/auth/token/", {"username": "nobody", "password": "wrong-password-1"})
    assert request_stats.flush() == 2
    rows = {(r.route, r.method): r for r in RequestMinute.objects.all()}
    unmatched = rows[("<unmatched>", "GET")]
    assert unmatched.count == 3 and unmatched.count_4xx == 3
    assert sum(unmatched.latency_buckets) == 3
    assert len(unmatched.latency_buckets) == len(LATENCY_BOUNDS_MS) + 1
    token_route = next(r for (route, method), r in rows.items() if method == "POST")
    assert token_route.route.startswith("api/v1/auth/token")
    assert request_stats.pending_count() == 0


def test_the_flush_happens_from_a_request_once_the_interval_has_passed(client: Any, settings: Any) -> None:
    settings.HLEKKR_REQUEST_STATS_FLUSH_SECONDS = 0
    client.get("/api/v1/no-such-endpoint/")
    assert RequestMinute.objects.filter(route="<unmatched>").count() == 1


def test_status_classes_are_counted_apart() -> None:
    stats = RequestStats()
    for status in (200, 201, 404, 429, 500, 503):
        stats.record(route="r", method="GET", status=status, duration_ms=12)
    stats.flush()
    row = RequestMinute.objects.get()
    assert (row.count, row.count_2xx, row.count_4xx, row.count_429, row.count_5xx) == (6, 2, 2, 1, 2)
    assert row.latency_sum_ms == pytest.approx(72)


def test_a_database_failure_during_flush_does_not_raise(monkeypatch: Any) -> None:
    stats = RequestStats()
    stats.record(route="r", method="GET", status=200, duration_ms=1)
    monkeypatch.setattr(RequestMinute.objects, "bulk_create", lambda rows: (_ for _ in ()).throw(RuntimeError("db")))
    assert stats.flush() == 0


def test_p95_interpolates_inside_the_bucket_that_holds_it() -> None:
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    buckets[LATENCY_BOUNDS_MS.index(100)] = 90  # 50-100 ms
    buckets[LATENCY_BOUNDS_MS.index(1000)] = 10  # 500-1000 ms
    p95 = percentile_from_buckets(buckets, 0.95)
    assert p95 is not None and 500 < p95 <= 1000
    assert percentile_from_buckets([0] * len(buckets), 0.95) is None


def test_exactly_five_percent_slow_keeps_p95_at_the_boundary() -> None:
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    buckets[LATENCY_BOUNDS_MS.index(500)] = 95
    buckets[LATENCY_BOUNDS_MS.index(1000)] = 5
    assert percentile_from_buckets(buckets, 0.95) == pytest.approx(500)


def test_buckets_from_several_rows_are_summed() -> None:
    assert merge_buckets([[1, 2, 3], [1, 0, 1], None]) == [2, 2, 4] + [0] * (len(LATENCY_BOUNDS_MS) - 2)
