"""Who a credential belongs to, remembered for a few seconds in each web process.

A JWT names a user id and an API key's prefix names a key row and its user; loading them was a query on every
API request (a join for keys), the largest share of a cached read. Each process now keeps what it loaded for
`HLEKKR_AUTH_CACHE_SECONDS` (default 5, 0 turns the cache off). The guarantee: deactivating a user, changing
a role, revoking a key stops it working within that many seconds on every process, and at once in the process
that made the change (the services call `forget_user` / `forget_api_key`).

What is not cached: anything the clock can change, and an API key's secret check. A JWT's signature is verified
once per process and TTL (a token cannot change, so the answer cannot either), its expiry on every request; an
API key's secret is compared with the stored hash on every request and its expiry read against the clock, so
an expired token or key stops at its expiry, not up to TTL later. Access tokens in memory are the ones the
process was just sent; nothing here is written anywhere.

Process-local on purpose: a shared cache (Redis) would be a round trip per request, which is what this removes.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings

T = TypeVar("T")
MAX_ENTRIES = 10_000  # a process serving more distinct callers than this within TTL starts again empty


def ttl_seconds() -> float:
    return float(getattr(settings, "HLEKKR_AUTH_CACHE_SECONDS", 5.0))


class TtlCache:
    """A dict whose entries expire `ttl_seconds()` after they were stored. Thread-safe for our use: a lost race
    means one extra load, never a wrong answer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Any, load: Callable[[], T]) -> T:
        ttl = ttl_seconds()
        if ttl <= 0:
            return load()
        entry = self._entries.get(key)
        now = self.clock()
        if entry is not None and entry[0] > now:
            return copy.copy(entry[1])  # callers may set attributes on it: never share one instance
        value = load()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + ttl, value)
        return copy.copy(value)

    def get(self, key: Any) -> Any:
        """The remembered value itself (not a copy) or None: for immutable values only."""
        if ttl_seconds() <= 0:
            return None
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self.clock() else None

    def put(self, key: Any, value: Any) -> None:
        ttl = ttl_seconds()
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock() + ttl, value)

    def forget(self, key: Any) -> None:
        self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[Any], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, value) in self._entries.items() if predicate(value)]:
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


users = TtlCache()  # user id -> User
api_keys = TtlCache()  # key prefix -> ApiKey with its user loaded
tokens = TtlCache()  # raw access token -> its verified simplejwt Token (signature checked once; expiry each time)


def forget_user(user_id: Any) -> None:
    """This process stops trusting what it remembered about the user (and the user's keys) now."""
    users.forget(user_id)
    users.forget(str(user_id))
    api_keys.forget_where(lambda key: key is not None and key.user_id == user_id)


def forget_api_key(prefix: str) -> None:
    api_keys.forget(prefix)


def clear() -> None:
    users.clear()
    api_keys.clear()
    tokens.clear()
