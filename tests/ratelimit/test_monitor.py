from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from hlekkr.accounts.models import User
from ratelimit import monitor, selectors
from ratelimit.models import RateLimitHit
from ratelimit.services import ratelimit_monitor_flush, ratelimit_monitor_store
from ratelimit.tasks import ratelimit_monitor_flush_task

READ = "/api/v1/probe/read/"


def _minute(dt: datetime) -> int:
    return int(dt.timestamp() // 60)


def test_requests_and_refusals_are_counted_per_key_group_and_minute(
    set_policy: Callable, api_as: Any, client_a: User, client_b: User, django_assert_num_queries: Any
) -> None:
    set_policy("read", "3/m")
    a, b = api_as(client_a), api_as(client_b)
    a.get(READ)  # warm
    with django_assert_num_queries(0):  # counting costs no database write (and the JWT user is cached)
        a.get(READ)
    for _ in range(3):
        a.get(READ)
    b.get(READ)
    assert RateLimitHit.objects.count() == 0
    assert ratelimit_monitor_flush() == 2
    row = RateLimitHit.objects.get(key=f"user:{client_a.pk}")
    assert (row.group, row.requests, row.refused) == ("read", 5, 2)
    assert row.minute.second == 0
    assert RateLimitHit.objects.get(key=f"user:{client_b.pk}").refused == 0


def test_flushing_twice_adds_up_and_an_empty_flush_does_nothing(db: Any) -> None:
    minute = _minute(timezone.now())
    monitor.record(group="read", key="ip:198.51.100.1", refused=True, minute=minute)
    ratelimit_monitor_flush()
    monitor.record(group="read", key="ip:198.51.100.1", refused=False, minute=minute)
    ratelimit_monitor_flush()
    assert ratelimit_monitor_flush() == 0
    row = RateLimitHit.objects.get()
    assert (row.requests, row.refused) == (2, 1)


def _seed(now: datetime) -> None:
    this_minute = _minute(now)
    ratelimit_monitor_store(
        counts={
            (this_minute - 5, "read", "user:1"): [90, 30],
            (this_minute - 4, "read", "user:1"): [70, 10],
            (this_minute - 3, "auth", "ip:203.0.113.5"): [40, 35],
            (this_minute - 3, "upload", "ip:203.0.113.5"): [30, 0],
            (this_minute - 2, "read", "key:abcd1234"): [20, 0],
            (this_minute - 120, "read", "user:9"): [500, 400],  # two hours ago: outside the last hour
        }
    )


def test_the_selectors_report_refusals_offenders_and_busy_keys(db: Any) -> None:
    now = timezone.now()
    _seed(now)
    assert selectors.refusals_last_hour(now=now) == 75
    assert selectors.refusal_alert(now=now) == {"firing": False, "refusals": 75, "threshold": 100}
    assert selectors.refusal_alert(threshold=50, now=now)["firing"] is True
    offenders = selectors.top_offenders(now=now)
    assert [(o["key"], o["refused"]) for o in offenders] == [("user:1", 40), ("ip:203.0.113.5", 35)]
    assert offenders[1]["groups"] == ["auth"]
    busy = selectors.keys_above(requests_per_minute=60, now=now)
    # ip:203.0.113.5 made 70 requests in one minute across two groups: the guide's minuteRequests counts them all.
    assert [(b["key"], b["requests"]) for b in busy] == [("user:1", 90), ("ip:203.0.113.5", 70), ("user:1", 70)]
    assert selectors.top_offenders(hours=3, now=now)[0]["key"] == "user:9"


def test_ratelimit_report_prints_the_same(db: Any) -> None:
    _seed(timezone.now())
    out = StringIO()
    call_command("ratelimit_report", "--above", "60", stdout=out)
    text = out.getvalue()
    assert "refusals in the last hour: 75 (threshold 100): ok" in text
    assert text.index("user:1") < text.index("ip:203.0.113.5")
    assert "keys above 60 requests per minute" in text and "requests     90" in text


def test_the_report_flushes_pending_counts_first(db: Any) -> None:
    for _ in range(3):
        monitor.record(group="auth", key="ip:192.0.2.1", refused=True)
    out = StringIO()
    call_command("ratelimit_report", stdout=out)
    assert "ip:192.0.2.1" in out.getvalue() and "refused      3" in out.getvalue()


def test_the_beat_task_flushes_and_warns_past_the_threshold(db: Any, settings: Any, caplog: Any) -> None:
    settings.HLEKKR_RATELIMIT_ALERT_REFUSALS_PER_HOUR = 2
    for _ in range(3):
        monitor.record(group="auth", key="ip:192.0.2.1", refused=True)
    assert ratelimit_monitor_flush_task.delay().get() == 1
    assert "rate-limit refusals in the last hour: 3 (threshold 2)" in caplog.text


def test_with_local_memory_the_web_process_flushes_closed_minutes_itself(db: Any) -> None:
    monitor.reset_local(inline_flush=True)
    last_minute = _minute(timezone.now()) - 1
    monitor.record(group="read", key="user:7", refused=False, minute=last_minute)
    monitor.record(group="read", key="user:7", refused=False)  # this minute: still open, kept in memory
    monitor.maybe_flush_inline()
    row = RateLimitHit.objects.get()
    assert row.requests == 1 and row.minute == datetime.fromtimestamp(last_minute * 60, tz=UTC)
    monitor.maybe_flush_inline()  # at most once a minute
    assert RateLimitHit.objects.count() == 1
    assert ratelimit_monitor_flush() == 1


def test_api_keys_are_recorded_by_prefix_only(set_policy: Callable, client_a: User) -> None:
    from rest_framework.test import APIClient

    from hlekkr.accounts.services import api_key_create

    issued = api_key_create(user=client_a, name="k", scopes=["media:read"], expires_at=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    client.get(READ)
    ratelimit_monitor_flush()
    key = RateLimitHit.objects.get().key
    secret = issued.plaintext.split(".", 1)[1]
    assert key == f"key:{issued.api_key.prefix}" and secret not in key


def test_old_minutes_do_not_count_towards_the_last_hour(db: Any) -> None:
    now = timezone.now()
    ratelimit_monitor_store(counts={(_minute(now - timedelta(minutes=61)), "read", "user:1"): [5, 5]})
    assert selectors.refusals_last_hour(now=now) == 0


def test_counts_whose_database_write_fails_are_kept_for_the_next_flush(db: Any) -> None:
    from unittest import mock

    import pytest

    minute = _minute(timezone.now()) - 5
    monitor.record(group="read", key="ip:203.0.113.9", refused=True, minute=minute)
    monitor.record(group="read", key="ip:203.0.113.9", refused=False, minute=minute)
    with (
        mock.patch("ratelimit.services.ratelimit_monitor_store", side_effect=RuntimeError("database down")),
        pytest.raises(RuntimeError),
    ):
        ratelimit_monitor_flush()
    assert RateLimitHit.objects.count() == 0
    assert ratelimit_monitor_flush() == 1
    row = RateLimitHit.objects.get(key="ip:203.0.113.9")
    assert (row.requests, row.refused) == (2, 1)
