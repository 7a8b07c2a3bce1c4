"""Django's RedisCache with two fixes that matter on the rate limiter's hot path (drop-in: same options,
same keys, same serializer; settings use it when REDIS_URL is set).

- Django builds a new `redis.Redis` object for every cache call, and redis-py 8 fills a dict of ~170 response
  callbacks in each constructor (~0.4 ms of CPU). A client is safe to share between threads (it checks a
  connection out of the pool per command), so keep one per pool.
- `incr` was EXISTS then INCRBY: two round trips, and a key that expires between them comes back without a
  TTL. Here it is one atomic Lua call that still raises ValueError for a missing key, as Django documents.
- `count_many` does django-ratelimit's add-then-increment for every window of a request in one Lua call, and
  `precounted` lets django-ratelimit's own `get_usage` read those results through its usual `add`/`incr`
  calls (see ratelimit/limiter.py): the rate limiter costs one round trip per request, whatever the number of
  windows, and django-ratelimit still decides keys, windows and limits. It can also read a few other keys in
  that same call (`read`), so a view that needs a cached value anyway (the media detail body) does not pay a
  second round trip for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

_INCR_IF_EXISTS = """
if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end
return false
"""

# django-ratelimit's counting step, per key: SET key 1 NX EX ttl (its `add`), else INCR (its `incr`), for the
# first ARGV[1] keys; then GET of the rest (false, i.e. nil, when absent; false keeps the reply's positions).
_ADD_OR_INCR_MANY = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  if redis.call('set', KEYS[i], 1, 'NX', 'EX', tonumber(ARGV[i + 1])) then
    out[i] = 1
  else
    out[i] = redis.call('incr', KEYS[i])
  end
end
for i = n + 1, #KEYS do
  out[i] = redis.call('get', KEYS[i])
end
return out
"""


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_script: Any = None
        self._count_script: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._clients[index] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        if self._incr_script is None:
            self._incr_script = client.register_script(_INCR_IF_EXISTS)
        value = self._incr_script(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)

    def add_or_incr_many(
        self, keys: list[str], ttls: list[int], read: list[str] | None = None
    ) -> tuple[list[int], list[Any]]:
        """(counts of `keys`, values of `read` deserialized, None where absent), in one round trip."""
        read = read or []
        client = self.get_client(keys[0] if keys else None, write=True)
        if self._count_script is None:
            self._count_script = client.register_script(_ADD_OR_INCR_MANY)
        out = self._count_script(keys=[*keys, *read], args=[len(keys), *ttls], client=client)
        counts, raw = out[: len(keys)], out[len(keys) :]
        return [int(n) for n in counts], [None if v is None else self._serializer.loads(v) for v in raw]  # type: ignore[attr-defined]


class RedisCache(DjangoRedisCache):
    """Instances are per thread (Django's `caches`), so the precounted answers below are this thread's own."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
        self._precounted: dict[str, int] = {}

    def count_many(self, keys_and_ttls: list[tuple[str, int]]) -> dict[str, int]:
        """Add-then-increment each key (with its TTL in seconds) in one round trip: {key: count after}."""
        return self.count_many_and_get(keys_and_ttls, [])[0]

    def count_many_and_get(
        self, keys_and_ttls: list[tuple[str, int]], read: list[str]
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """count_many, and `get_many(read)` in the same round trip: ({key: count after}, {key: value})."""
        made = [self.make_and_validate_key(key) for key, _ in keys_and_ttls]
        client: RedisCacheClient = self._cache  # type: ignore[assignment]
        counts, values = client.add_or_incr_many(
            made, [ttl for _, ttl in keys_and_ttls], [self.make_and_validate_key(key) for key in read]
        )
        found = {key: value for key, value in zip(read, values, strict=True) if value is not None}
        return {key: count for (key, _), count in zip(keys_and_ttls, counts, strict=True)}, found

    @contextmanager
    def precounted(self, counts: dict[str, int]) -> Iterator[None]:
        """While open, `add(key)` and `incr(key)` of these keys answer from `counts` (what `count_many`
        already did in Redis) instead of doing it again: add is "the count is 1", incr is the count."""
        self._precounted = counts
        try:
            yield
        finally:
            self._precounted = {}

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        if key in self._precounted and version is None:
            return self._precounted[key] == 1
        return bool(super().add(key, value, timeout, version))

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        if key in self._precounted and version is None and delta == 1:
            return self._precounted.pop(key)
        return int(super().incr(key, delta, version))
