"""The active policies, cached in each process and refreshed when the shared version changes.

Every web process keeps the enabled policies in memory. At most every `HLEKKR_RATELIMIT_POLICY_TTL` seconds
(default 2) it reads one small key from the shared cache, the policy version, which every policy save or delete
replaces (`policy_version_bump`). A different version means reload from the database. So an admin edit is in
force on every process within TTL seconds, and the hot path costs one cache read every TTL seconds, not a
database query per request. As a backstop against a lost bump (cache down during the save), policies are also
reloaded every `MAX_AGE` seconds.

A group with no rows at all (not even disabled ones) falls back to the built-in defaults below, which match the
data migration: deleting every row of a group must not silently remove its protection. Disable the rows to
switch a group off.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.cache import cache

from ratelimit.rates import parse_rate

logger = logging.getLogger(__name__)

VERSION_KEY = "ratelimit:policy-version"
MAX_AGE = 60.0


@dataclass(frozen=True)
class Window:
    """One enforced window: `limit` requests per `period` seconds, counted per `key_type`."""

    group: str
    key_type: str
    rate: str
    limit: int
    period: int
    role_multipliers: dict[str, float] = field(default_factory=dict, hash=False, compare=False)

    def limit_for(self, role: str | None) -> int:
        factor = self.role_multipliers.get(role or "", 1) if role else 1
        return max(1, int(self.limit * factor))


_DEFAULT_MULTIPLIERS: dict[str, float] = {"client": 1, "moderator": 2, "lead": 3, "admin": 5}
# (group, key_type, rate, role multipliers): the same rows the data migration creates.
DEFAULT_POLICIES: tuple[tuple[str, str, str, dict[str, float], str], ...] = (
    ("auth", "ip", "5/5m", {}, "Login and token endpoints, per client IP (failed and in-flight attempts)"),
    ("upload", "user", "30/m", _DEFAULT_MULTIPLIERS, "Uploads and other writes, per user"),
    ("upload", "user", "600/h", _DEFAULT_MULTIPLIERS, "Uploads and other writes, hourly cap per user"),
    ("upload_init", "user", "5/m", _DEFAULT_MULTIPLIERS, "Multipart upload initiation, per user"),
    ("read", "user", "60/m", _DEFAULT_MULTIPLIERS, "Reads, per user"),
    ("review", "user", "30/m", _DEFAULT_MULTIPLIERS, "Review actions (API and dashboard), per moderator"),
    ("batch", "user", "10/m", _DEFAULT_MULTIPLIERS, "Batch creation (up to 500 items each), per user"),
    ("batch", "user", "100/h", _DEFAULT_MULTIPLIERS, "Batch creation, hourly cap per user"),
    ("webhooks", "user", "30/m", _DEFAULT_MULTIPLIERS, "Webhook endpoint management, per user"),
)


def _window(group: str, key_type: str, rate: str, multipliers: dict[str, float]) -> Window:
    limit, period = parse_rate(rate)
    return Window(group, key_type, rate, limit, period, dict(multipliers or {}))


def _defaults() -> dict[str, list[Window]]:
    by_group: dict[str, list[Window]] = {}
    for group, key_type, rate, multipliers, _ in DEFAULT_POLICIES:
        by_group.setdefault(group, []).append(_window(group, key_type, rate, multipliers))
    return by_group


class PolicyCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._by_group: dict[str, list[Window]] | None = None
        self._version: str | None = None
        self._checked_at = 0.0
        self._loaded_at = 0.0

    def ttl(self) -> float:
        from django.conf import settings

        return float(getattr(settings, "HLEKKR_RATELIMIT_POLICY_TTL", 2.0))

    def windows(self, group: str) -> list[Window]:
        now = self.clock()
        if self._by_group is None or now - self._checked_at >= self.ttl():
            self._refresh(now)
        assert self._by_group is not None
        return self._by_group.get(group, [])

    def _shared_version(self) -> str | None:
        try:
            version = cache.get(VERSION_KEY)
        except Exception:  # the cache being down must not take the API down with it
            logger.warning("rate-limit policy version unreadable (cache down); keeping the loaded policies")
            return self._version
        if version is None:
            # Evicted or a fresh cache: publish ours rather than make every process reload for nothing.
            version = self._version or secrets.token_hex(8)
            try:
                cache.add(VERSION_KEY, version, timeout=None)
                version = cache.get(VERSION_KEY, version)
            except Exception:
                return self._version
        return str(version)

    def _refresh(self, now: float) -> None:
        with self._lock:
            if self._by_group is not None and now - self._checked_at < self.ttl():
                return  # another thread refreshed while we waited
            version = self._shared_version()
            stale = self._by_group is None or version != self._version or now - self._loaded_at >= MAX_AGE
            if stale:
                self._by_group = self._load()
                self._loaded_at = now
            self._version = version
            self._checked_at = now

    def _load(self) -> dict[str, list[Window]]:
        from ratelimit.models import RateLimitPolicy

        rows = list(RateLimitPolicy.objects.values_list("group", "key_type", "rate", "role_multipliers", "enabled"))
        by_group: dict[str, list[Window]] = {group: [] for group, *_ in rows}
        for group, key_type, rate, multipliers, enabled in rows:
            if not enabled:
                continue
            try:
                by_group[group].append(_window(group, key_type, rate, multipliers))
            except ValueError:
                logger.error("ignoring rate-limit policy with unreadable rate %r in group %s", rate, group)
        for group, windows in _defaults().items():
            by_group.setdefault(group, windows)
        return by_group

    def invalidate(self) -> None:
        with self._lock:
            self._by_group = None


policy_cache = PolicyCache()


def windows_for(group: str) -> list[Window]:
    return policy_cache.windows(group)


def policy_version_bump() -> None:
    """Tell every process to reload: a new random version (not a counter, so a cache restart cannot replay one)."""
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:
        logger.error("could not bump the rate-limit policy version (cache down); processes reload within %ss", MAX_AGE)
