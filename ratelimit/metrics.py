"""Prometheus counters for the limiter (registered on the default registry, which /metrics exposes)."""

from __future__ import annotations

from prometheus_client import Counter

refusals_total = Counter("hlekkr_ratelimit_refusals_total", "Requests refused with 429 by the rate limiter.", ["group"])
backend_errors_total = Counter(
    "hlekkr_ratelimit_backend_errors_total",
    "Rate-limit checks that could not reach the cache (failed open, or closed for fail-closed groups).",
    ["group", "outcome"],
)
