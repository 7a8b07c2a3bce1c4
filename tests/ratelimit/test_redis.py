"""On a real Redis: the limit holds under parallel requests, and the monitor's pipelined counters drain once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import caches
from django.test import RequestFactory
from django_ratelimit.core import _get_window

from ratelimit import limiter, monitor
from ratelimit.models import RateLimitHit
from ratelimit.policies import policy_cache
from ratelimit.services import ratelimit_monitor_flush

# One xdist worker runs all of these: they share one Redis database, and a test clears it.
pytestmark = [pytest.mark.redis, pytest.mark.xdist_group("redis")]


def _delete_prefixed(prefix: str) -> None:
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def on_redis(settings: Any, redis_url: str, set_policy: Callable) -> Iterator[None]:
    # Each test its own key prefix, removed by prefix: never FLUSHDB, which would reset the counters of a Redis
    # test running at the same moment on the other xdist worker (the redis group does not always stay on one).
    prefix = f"hlekkr-test-{time.time_ns()}"
    settings.CACHES = {
        "default": {"BACKEND": "ratelimit.cache.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}
    }
    yield
    _delete_prefixed(prefix)


def _wait_for_a_fresh_window(value: str, period: int, margin: float = 5) -> None:
    """Fixed windows end at a per-key instant; start a burst well inside one so it cannot straddle two."""
    while _get_window(value, period) - time.time() < margin:
        time.sleep(0.2)


def test_parallel_requests_admit_at_most_the_limit_in_one_window(
    on_redis: None, set_policy: Callable, settings: Any
) -> None:
    limit, threads_n = 5, 24
    set_policy("upload", "5/m")
    policy_cache.windows("upload")  # load in this thread; workers only read the cached policies
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 3600
    user = SimpleNamespace(pk=4242, is_authenticated=True, role="client")
    _wait_for_a_fresh_window("user:4242", 60)
    barrier = threading.Barrier(threads_n)
    decisions: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        request = RequestFactory().post("/api/v1/probe/upload/")
        barrier.wait()
        # Django gives each thread its own cache object, so each thread talks to Redis on its own connection.
        refused = limiter.check(request, group="upload", user=user).refused  # type: ignore[arg-type]
        with lock:
            decisions.append(refused)

    workers = [threading.Thread(target=one) for _ in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert len(decisions) == threads_n
    assert decisions.count(False) == limit
    assert limiter.circuit.open_until == 0


def test_the_monitor_counts_in_redis_and_drains_each_count_once(on_redis: None, db: Any) -> None:
    assert monitor._is_redis()
    for refused in (True, False, False):
        monitor.record(group="read", key="user:1", refused=refused)
    monitor.record(group="auth", key="ip:192.0.2.9", refused=True, minute=monitor.now_minute() - 10)
    assert ratelimit_monitor_flush() == 2
    assert ratelimit_monitor_flush() == 0
    read = RateLimitHit.objects.get(group="read")
    assert (read.key, read.requests, read.refused) == ("user:1", 3, 1)
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    members = {int(m) for m in client.smembers(monitor._minutes_key())}
    assert monitor.now_minute() - 10 not in members  # closed minutes leave the index once drained


def test_limits_and_headers_work_end_to_end_on_redis(
    on_redis: None, set_policy: Callable, api_as: Any, client_a: Any
) -> None:
    # An hour's window: on a loaded CI machine four requests can take longer than the few seconds left in a
    # minute's window, and a burst that straddles two windows is admitted whole (documented fixed-window edge).
    set_policy("read", "3/h")
    _wait_for_a_fresh_window(f"user:{client_a.pk}", 3600, margin=120)
    client = api_as(client_a)
    responses = [client.get("/api/v1/probe/read/") for _ in range(4)]
    assert limiter.circuit.open_until == 0, "Redis did not answer within the cache's socket timeout"
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert responses[-1]["Retry-After"].isdigit()


def test_the_redis_backend_reuses_its_client_and_increments_atomically(on_redis: None) -> None:
    backend = caches["default"]
    assert backend._cache.get_client(write=True) is backend._cache.get_client(write=True)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        backend.incr("ratelimit-test-missing")
    backend.set("ratelimit-test-counter", 1, timeout=30)
    assert backend.incr("ratelimit-test-counter") == 2
    assert backend.decr("ratelimit-test-counter") == 1
    assert 0 < backend._cache.get_client().ttl(backend.make_key("ratelimit-test-counter")) <= 30  # type: ignore[attr-defined]


def test_a_quiet_process_still_pushes_its_last_counts(on_redis: None, db: Any) -> None:
    minute = monitor.now_minute()
    monitor.record(group="read", key="user:5", refused=False, minute=minute)  # arms the process's push timer
    monitor.record(group="read", key="user:5", refused=True, minute=minute)  # batched: the same push
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    field = "read|user:5|x"
    deadline = time.time() + 5
    while time.time() < deadline and not client.hget(monitor._hash_key(minute), field):
        time.sleep(0.1)
    assert client.hget(monitor._hash_key(minute), field) == b"1"


def test_on_redis_counts_whose_database_write_fails_are_kept_for_the_next_flush(on_redis: None, db: Any) -> None:
    from unittest import mock

    minute = monitor.now_minute() - 10
    monitor.record(group="auth", key="ip:192.0.2.10", refused=True, minute=minute)
    with (
        mock.patch("ratelimit.services.ratelimit_monitor_store", side_effect=RuntimeError("database down")),
        pytest.raises(RuntimeError),
    ):
        ratelimit_monitor_flush()
    assert ratelimit_monitor_flush() == 1
    row = RateLimitHit.objects.get(key="ip:192.0.2.10")
    assert (row.requests, row.refused) == (1, 1)


class RoundTrips:
    """Counts what the thread running a block sends to Redis (a command, or a pipeline's batch, counts once):
    what a request waits for (the monitor's timer thread pushes beside it). Counted on the connection, where
    both redis-py's commands and the limiter's direct EVALSHA (ratelimit/cache.py) pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis.connection import AbstractConnection

        self.count = 0
        self.counting = False
        self.thread: threading.Thread | None = None
        for cls, name in ((AbstractConnection, "send_packed_command"),):
            original = getattr(cls, name)

            def wrapped(self_: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                if self.counting and threading.current_thread() is self.thread:
                    self.count += 1
                return _original(self_, *args, **kwargs)

            monkeypatch.setattr(cls, name, wrapped)

    def __enter__(self) -> RoundTrips:
        self.count, self.counting, self.thread = 0, True, threading.current_thread()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.counting = False


def test_a_request_costs_one_redis_round_trip_for_all_its_windows(
    on_redis: None, set_policy: Callable, api_as: Any, client_a: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    set_policy("upload", "4/m", "100/h")  # two windows, counted together
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 60  # the version check runs every TTL seconds, not per request
    _wait_for_a_fresh_window(f"user:{client_a.pk}", 60)
    client = api_as(client_a)
    client.post("/api/v1/probe/upload/")
    round_trips = RoundTrips(monkeypatch)
    with round_trips:
        responses = [client.post("/api/v1/probe/upload/") for _ in range(4)]
    assert [r.status_code for r in responses] == [201, 201, 201, 429]
    # One Lua call per request; the refused one also gives its two increments back (decr, decr).
    assert round_trips.count == 4 + 2
    assert [r["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]


def test_a_request_reads_other_keys_in_its_counting_round_trip(
    on_redis: None, set_policy: Callable, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    set_policy("read", "3/m", "100/h")
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 60
    policy_cache.windows("read")
    backend = caches["default"]
    backend.set("hook-a", {"body": [1, 2]}, 30)
    backend.set("hook-n", 7, 30)
    user = SimpleNamespace(pk=4343, is_authenticated=True, role="client")
    _wait_for_a_fresh_window("user:4343", 60)
    request = RequestFactory().get("/api/v1/probe/read/")
    round_trips = RoundTrips(monkeypatch)
    with round_trips:
        decisions = [
            limiter.check(request, group="read", user=user, also_get=["hook-a", "hook-n", "hook-gone"])  # type: ignore[arg-type]
            for _ in range(4)
        ]
    assert [d.fetched for d in decisions[:3]] == [{"hook-a": {"body": [1, 2]}, "hook-n": 7}] * 3
    assert [d.refused for d in decisions] == [False, False, False, True]
    assert [d.usage.remaining for d in decisions[:3] if d.usage] == [2, 1, 0]
    assert round_trips.count == 4 + 2  # one Lua call each; the refused one gives its two increments back


def test_no_request_waits_for_the_monitors_push(on_redis: None, monkeypatch: pytest.MonkeyPatch) -> None:
    round_trips = RoundTrips(monkeypatch)
    minute = monitor.now_minute()
    with round_trips:
        for _ in range(3):
            monitor.record(group="read", key="user:6", refused=False, minute=minute)
        time.sleep(monitor.PUSH_INTERVAL + 0.5)  # the timer pushes meanwhile, on its own thread
        monitor.record(group="read", key="user:6", refused=False, minute=minute)
    assert round_trips.count == 0
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    deadline = time.time() + 5
    while time.time() < deadline and client.hget(monitor._hash_key(minute), "read|user:6|n") != b"4":
        time.sleep(0.1)
    assert client.hget(monitor._hash_key(minute), "read|user:6|n") == b"4"


def test_counting_survives_a_redis_that_forgot_the_script_or_dropped_the_connection(
    on_redis: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limiter's EVALSHA is sent on a pooled connection directly (ratelimit/cache.py): it must still run the
    script when Redis does not know it (a restart) and reconnect once when Redis closed the pooled connection.
    Both are made for this test's own connection only: other processes share the Redis server."""
    from ratelimit import cache as cache_module

    backend = caches["default"]
    client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]
    key = f"probe-{time.time_ns()}"
    assert backend.count_many_and_get([(key, 30)], [])[0] == {key: 1}  # type: ignore[attr-defined]
    with monkeypatch.context() as m:
        m.setattr(cache_module, "_ADD_OR_INCR_MANY_SHA", "0" * 40)  # a script Redis has never seen: NOSCRIPT
        assert backend.count_many_and_get([(key, 30)], [])[0] == {key: 2}  # type: ignore[attr-defined]
    pool = client.connection_pool
    conn = pool.get_connection()
    conn.send_command("CLIENT", "ID")
    pooled_id = conn.read_response()
    pool.release(conn)  # the next command takes this connection again
    assert client.client_kill_filter(_id=pooled_id, skipme=False) == 1  # sent on that same connection
    assert backend.count_many_and_get([(key, 30)], [])[0] == {key: 3}  # type: ignore[attr-defined]
    assert limiter.circuit.open_until == 0


def test_the_direct_evalsha_is_packed_and_read_back_as_redis_py_and_django_would() -> None:
    """ratelimit/cache.py writes the limiter's command itself and skips the serializer's int() attempt on a
    pickle: the same bytes on the wire and the same values back."""
    import redis
    from django.core.cache.backends.redis import RedisSerializer

    from ratelimit import cache as cache_module

    args = ("EVALSHA", "ab" * 20, 3, "p:1:rl:é", "p:1:media:detail:gen:*", "k", 1, 70, -5, 0)
    assert cache_module._pack(*args) == b"".join(redis.Connection().pack_command(*args))
    serializer = RedisSerializer()
    for value in ({"body": [1, "x"]}, "a1b2", 7, b"\x80raw", None, True):
        stored = serializer.dumps(value)
        data = stored if isinstance(stored, bytes) else str(stored).encode()
        assert cache_module._loads(serializer, data) == serializer.loads(data) == value
