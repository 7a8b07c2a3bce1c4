"""Rate-limiter overhead on Redis, and a burst across a fixed-window boundary.

    python bench/ratelimit.py [--n 3000] [--redis redis://127.0.0.1:6379/15]

Measured in-process with DRF's APIRequestFactory: the same trivial view with and without the limiter (the
GroupRateThrottle plus the headers middleware, policies as deployed: cached in process, counters and monitor on
Redis), and the same view plus one bare Redis PING on the limiter's client, calls interleaved so all three see the
same machine noise. Prints p50/p99 of each, the limiter's overhead, a bare round trip's overhead, and the first as
a multiple of the second (a limiter that asks Redis once per request cannot cost less than 1x). Then a burst of 3L requests just before a window boundary and 3L just after: a fixed
window admits up to L in each, so up to 2L in a span much shorter than one window (the documented bound).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HLEKKR_ENV", "test")


def _setup(redis_url: str) -> None:
    import django
    from django.conf import settings

    import hlekkr.settings_test as base

    conf = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    conf["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    conf["CACHES"] = {
        "default": {
            "BACKEND": "ratelimit.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"hlekkr-bench-{os.getpid()}",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    conf["LOGGING"] = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
    settings.configure(**conf)
    django.setup()
    from django.db import connection

    from ratelimit.models import RateLimitPolicy

    with connection.schema_editor() as editor:  # only the policy table: the bench needs nothing else
        editor.create_model(RateLimitPolicy)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--redis", default=os.environ.get("HLEKKR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    _setup(args.redis)

    from django.core.cache import cache
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory, force_authenticate
    from rest_framework.views import APIView

    from ratelimit.middleware import RateLimitMiddleware
    from ratelimit.models import RateLimitPolicy
    from ratelimit.throttling import GroupRateThrottle

    cache.clear()
    RateLimitPolicy.objects.create(group="read", key_type="user", rate="100000000/m", role_multipliers={})
    RateLimitPolicy.objects.create(group="upload", key_type="user", rate="20/2s", role_multipliers={})

    class Plain(APIView):
        authentication_classes: list[Any] = []
        permission_classes: list[Any] = []
        throttle_classes: list[Any] = []

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

        def post(self, request: Request) -> Response:
            return Response({"ok": True})

    redis_client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]

    class PlainWithRoundTrip(Plain):
        """The unlimited view plus one bare Redis round trip (PING) on the limiter's own client: the floor for
        any limiter that asks Redis once per request."""

        def get(self, request: Request) -> Response:
            redis_client.ping()
            return Response({"ok": True})

    class Limited(Plain):
        throttle_classes = [GroupRateThrottle]
        ratelimit_group = "read"

    class LimitedWrite(Limited):
        ratelimit_group = "upload"

    factory = APIRequestFactory()
    user = SimpleNamespace(pk=1, is_authenticated=True, role="client")

    def handler(view_cls: type[APIView], method: str = "get", who: Any = user) -> Any:
        view = view_cls.as_view()

        def get_response(request: Any) -> Any:
            return view(request)

        wrapped = RateLimitMiddleware(get_response)

        def call() -> Any:
            request = getattr(factory, method)("/api/v1/bench/")
            force_authenticate(request, user=who)
            return wrapped(request)

        return call

    plain, limited, round_trip = handler(Plain), handler(Limited), handler(PlainWithRoundTrip)
    for _ in range(300):  # warm connections, imports, policy cache
        plain()
        limited()
        round_trip()
    assert limited()["X-RateLimit-Limit"] == "100000000"

    client = redis_client
    rtt = []
    for _ in range(500):
        t0 = time.perf_counter_ns()
        client.ping()
        rtt.append((time.perf_counter_ns() - t0) / 1e6)

    import threading

    from redis.connection import AbstractConnection

    # Counted on the connection, where redis-py's commands and the limiter's direct EVALSHA (ratelimit/cache.py)
    # both pass, by this thread only (the monitor's timer thread pushes beside it).
    sent = [0]
    original = AbstractConnection.send_packed_command
    me = threading.current_thread()

    def counting(self: Any, *a: Any, **kw: Any) -> Any:
        if threading.current_thread() is me:
            sent[0] += 1
        return original(self, *a, **kw)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    commands_before = int(client.info("stats")["total_commands_processed"])
    sent[0] = 0
    for _ in range(200):
        limited()
    trips = sent[0] / 200
    AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    commands = (int(client.info("stats")["total_commands_processed"]) - commands_before - 1) / 200

    base_ms: list[float] = []
    lim_ms: list[float] = []
    rt_ms: list[float] = []
    for _ in range(args.n):  # interleaved, so all three see the same machine noise
        t0 = time.perf_counter_ns()
        plain()
        t1 = time.perf_counter_ns()
        limited()
        t2 = time.perf_counter_ns()
        round_trip()
        t3 = time.perf_counter_ns()
        base_ms.append((t1 - t0) / 1e6)
        lim_ms.append((t2 - t1) / 1e6)
        rt_ms.append((t3 - t2) / 1e6)

    print(f"rate limiter on Redis ({args.redis}), {args.n} interleaved calls each, in-process (APIRequestFactory)")
    print(f"  Redis PING round trip: p50 {statistics.median(rtt):.3f} ms, p99 {_percentile(rtt, 0.99):.3f} ms")
    print(
        f"  Redis round trips a limited request waits for: {trips:.2f} (one EVALSHA doing django-ratelimit's"
        f" SET NX / INCR for every window); commands Redis processed per request: {commands:.2f} (with the"
        " monitor's pipelined push, once a second from a timer thread)"
    )
    print(f"  machine load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        b, limited_q, rt_q = _percentile(base_ms, q), _percentile(lim_ms, q), _percentile(rt_ms, q)
        print(
            f"  {label}: unlimited {b:.3f} ms, limited {limited_q:.3f} ms, unlimited + one bare PING {rt_q:.3f} ms;"
            f" limiter overhead **{limited_q - b:+.3f} ms** (target at p99: < 1 ms),"
            f" a bare round trip's {rt_q - b:+.3f} ms: the limiter costs"
            f" {(limited_q - b) / max(rt_q - b, 1e-3):.2f}x a bare round trip, {limited_q - rt_q:+.3f} ms beyond it"
        )

    # Burst across a window boundary: L=20 per 2 s for one user.
    from django_ratelimit.core import _get_window

    limit, period, burst_user = 20, 2, SimpleNamespace(pk=777, is_authenticated=True, role="client")
    write = handler(LimitedWrite, "post", burst_user)
    # django-ratelimit names a window by its last whole second w; the next window starts at w + 1.
    boundary = _get_window("user:777", period) + 1
    while boundary - time.time() < 0.6:  # want room before the next boundary
        time.sleep(0.05)
        boundary = _get_window("user:777", period) + 1
    time.sleep(max(0.0, boundary - time.time() - 0.25))
    started = time.time()
    before = [write().status_code for _ in range(3 * limit)]
    time.sleep(max(0.0, boundary - time.time() + 0.02))
    after = [write().status_code for _ in range(3 * limit)]
    span = time.time() - started
    accepted = before.count(200) + after.count(200)
    print(
        f"burst across a window boundary (L={limit} per {period} s): {6 * limit} requests in {span:.2f} s, "
        f"accepted {before.count(200)} before + {after.count(200)} after = {accepted} (fixed-window bound 2L = {2 * limit})"
    )
    cache.clear()


if __name__ == "__main__":
    main()
