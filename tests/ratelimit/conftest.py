"""Rate-limit fixtures: a clean cache, policies re-read on every request, and policy helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache

from ratelimit import limiter, monitor
from ratelimit.models import RateLimitPolicy
from ratelimit.policies import policy_cache
from ratelimit.services import ratelimit_policy_save


@pytest.fixture(autouse=True)
def _ratelimit_env(settings: Any) -> Iterator[None]:
    """Fresh counters, policies checked on every request (TTL 0), the probe routes, no stray circuit state."""
    cache.clear()
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 0
    settings.ROOT_URLCONF = "tests.ratelimit.urls"
    settings.HLEKKR_TRUSTED_PROXIES = []
    limiter.circuit.reset()
    monitor.reset_local(inline_flush=False)
    policy_cache.invalidate()
    yield
    policy_cache.clock = __import__("time").monotonic
    limiter.circuit.reset()
    policy_cache.invalidate()
    monitor.reset_local(inline_flush=False)


@pytest.fixture
def set_policy(db: Any) -> Callable[..., list[RateLimitPolicy]]:
    """set_policy("read", "3/m", key_type="user", multipliers=None): replace every window of a group."""

    def apply(
        group: str, *rates: str, key_type: str = "user", multipliers: dict[str, float] | None = None
    ) -> list[RateLimitPolicy]:
        RateLimitPolicy.objects.filter(group=group).delete()
        saved = [
            ratelimit_policy_save(
                actor=None,
                policy=RateLimitPolicy(
                    group=group,
                    key_type=key_type,
                    rate=rate,
                    role_multipliers=multipliers if multipliers is not None else {"client": 1, "moderator": 2},
                ),
            )
            for rate in rates
        ]
        policy_cache.invalidate()
        return saved

    return apply
