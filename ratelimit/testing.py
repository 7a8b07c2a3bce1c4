"""Test support, used by tests/conftest.py so no test is throttled by another's traffic."""

from __future__ import annotations

from django.core.cache import cache

from ratelimit import limiter, monitor
from ratelimit.policies import policy_cache


def reset(*, load_policies: bool) -> None:
    """Empty the cache and the monitor, close the circuit; with database access, load the policies now so
    the first request of a test does not add a policy query to its pinned query count."""
    cache.clear()
    monitor.reset_local(inline_flush=False)
    limiter.circuit.reset()
    policy_cache.invalidate()
    if load_policies:
        policy_cache.windows("read")
