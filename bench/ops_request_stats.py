"""Cost of the request-stats middleware on the hot path, as a ratio against the same request without it.

    .venv/bin/python bench/ops_request_stats.py

Runs a trivial view through Django's RequestFactory N times bare and N times wrapped in RequestStatsMiddleware
(Prometheus histogram + counter + in-process per-minute aggregate; no flush: the flush interval is set huge,
so this is the per-request cost; a flush is one bulk insert every 10 s per process).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")
os.environ.setdefault("HLEKKR_VAR_DIR", tempfile.mkdtemp(prefix="hlekkr-bench-"))
os.environ["HLEKKR_REQUEST_STATS_FLUSH_SECONDS"] = "1000000"

import django

django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import resolve  # noqa: E402

from hlekkr.ops.middleware import RequestStatsMiddleware  # noqa: E402
from hlekkr.ops.stats import request_stats  # noqa: E402

N = 20_000
ROUNDS = 5
factory = RequestFactory()
match = resolve("/api/v1/auth/me/")


def view(request: HttpRequest) -> HttpResponse:
    request.resolver_match = match
    return HttpResponse(b"ok")


wrapped = RequestStatsMiddleware(view)


def run(handler: object) -> float:
    request = factory.get("/api/v1/auth/me/")
    started = time.perf_counter()
    for _ in range(N):
        handler(request)  # type: ignore[operator]
    return (time.perf_counter() - started) / N * 1e6


bare_us, with_us = [], []
for _ in range(ROUNDS):
    bare_us.append(run(view))
    with_us.append(run(wrapped))
bare, wrapped_cost = statistics.median(bare_us), statistics.median(with_us)
print(f"requests per round: {N}, rounds: {ROUNDS}, pending aggregated: {request_stats.pending_count()}")
print(f"bare view:             {bare:7.2f} us/request (baseline)")
print(f"with request stats:    {wrapped_cost:7.2f} us/request ({wrapped_cost / bare:.2f}x baseline)")
print(f"middleware overhead:   {wrapped_cost - bare:7.2f} us/request")
request_stats._pending.clear()  # the bench database has no tables; nothing to flush at exit
