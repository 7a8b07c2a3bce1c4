"""Django's RedisCache with two fixes that matter on the rate limiter's hot path (drop-in: same options,
same keys, same serializer; settings use it when REDIS_URL is set).

- Django builds a new `redis.Redis` object for every cache call, and redis-py 8 fills a dict of ~170 response
  callbacks in each constructor (~0.4 ms of CPU). A client is safe to share between threads (it checks a
  connection out of the pool per command), so keep one per pool.
- `incr` was EXISTS then INCRBY: two round trips, and a key that expires between them comes back without a
  TTL. Here it is one atomic Lua call that still raises ValueError for a missing key, as Django documents.
- `count_many_and_get` does django-ratelimit's add-then-increment for every window of a request in one Lua
  call (ratelimit/limiter.py computes django-ratelimit's usage from the counts it returns): the rate limiter
  costs one round trip per request, whatever the number of windows. It can also read a few other keys in that
  same call, so a view that needs a cached value anyway (the media detail body) does not pay a second round
  trip for it. That call is sent on a pooled connection directly (`_evalsha`), not through redis-py's
  `execute_command`, whose retry wrapper, observability hooks and per-call closures were about a sixth of a
  cached media read's CPU; it keeps what matters of them: EVAL when Redis lost the script, one retry on a new
  connection when a pooled one turns out dead, the connection dropped when a reply was not read to the end.
  Its arguments (the limiter's and the detail cache's own ASCII keys, and integers) are written as the RESP
  array redis-py would write, by `_pack`, and its keys prefixed with a string built once.
"""

from __future__ import annotations

import hashlib
import pickle  # nosec B403  # only to read back the values Django's cache serializer wrote (see _loads)
from typing import Any

from django.core.cache.backends.base import default_key_func
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from django.core.cache.backends.redis import RedisSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
# Redis names a script by its SHA-1 (EVALSHA): an identifier, not a security measure.
_ADD_OR_INCR_MANY_SHA = hashlib.sha1(_ADD_OR_INCR_MANY.encode(), usedforsecurity=False).hexdigest()


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_script: Any = None

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
        out = _evalsha(client.connection_pool, [*keys, *read], [len(keys), *ttls])
        counts, raw = out[: len(keys)], out[len(keys) :]
        return [int(n) for n in counts], [None if v is None else _loads(self._serializer, v) for v in raw]  # type: ignore[attr-defined]


def _loads(serializer: Any, data: bytes) -> Any:
    """Django's RedisSerializer.loads (an integer's digits, else a pickle): a pickle starts with its PROTO
    opcode (0x80), which int() would only refuse with a ValueError."""
    if data[:1] == b"\x80" and type(serializer) is RedisSerializer:
        return pickle.loads(data)  # noqa: S301  # nosec B301  # Django's own cache serializer, our own values
    return serializer.loads(data)


def _pack(*args: str | int) -> bytes:
    """The RESP array of bulk strings redis-py's packer writes for these arguments (str as UTF-8, int as its
    decimal digits), in one bytes object."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _evalsha(pool: Any, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA of the counting script (_ADD_OR_INCR_MANY) on one pooled connection (EVAL if Redis lost it): one
    round trip."""
    conn = pool.get_connection()
    try:
        for attempt in (1, 2):
            try:
                conn.send_packed_command([_pack("EVALSHA", _ADD_OR_INCR_MANY_SHA, len(keys), *keys, *args)])
                try:
                    return conn.read_response()
                except NoScriptError:  # a restarted or flushed Redis: EVAL runs it and caches it again
                    conn.send_command("EVAL", _ADD_OR_INCR_MANY, len(keys), *keys, *args)
                    return conn.read_response()
            except (RedisConnectionError, RedisTimeoutError):
                # A pooled connection Redis closed (restart, idle timeout): redis-py retries those on a new
                # connection too. A timeout may have counted this request already; one extra count is the same
                # risk redis-py's own retry takes.
                conn.disconnect()
                if attempt == 2:
                    raise
    except BaseException:
        conn.disconnect()  # a reply half read must not be read by the next command on this connection
        raise
    finally:
        pool.release(conn)


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
        # make_key's answer is this prefix and the key when the key function is Django's default.
        self._made_key_prefix = f"{self.key_prefix}:{self.version}:" if self.key_func is default_key_func else None

    def _prefixed(self, key: str) -> str:
        return self.make_key(key) if self._made_key_prefix is None else self._made_key_prefix + key

    def count_many_and_get(
        self, keys_and_ttls: list[tuple[str, int]], read: list[str]
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """django-ratelimit's add-then-increment of each key (with its TTL in seconds), and `get_many(read)`, in
        one round trip: ({key: count after}, {key: value} of those present). The keys are the limiter's and the
        detail cache's own (hex digests and ids), so they are prefixed without Django's per-character
        memcached-compatibility scan."""
        client: RedisCacheClient = self._cache  # type: ignore[assignment]
        counts, values = client.add_or_incr_many(
            [self._prefixed(key) for key, _ in keys_and_ttls],
            [ttl for _, ttl in keys_and_ttls],
            [self._prefixed(key) for key in read],
        )
        found = {key: value for key, value in zip(read, values, strict=True) if value is not None}
        return {key: count for (key, _), count in zip(keys_and_ttls, counts, strict=True)}, found
