"""Per-minute request and refusal counters by (group, key), kept in the cache and flushed to RateLimitHit.

The hot path only increments a dict in this process. On Redis a daemon timer pushes a process's counts a second
after the first unpushed one, in one pipelined round trip (HINCRBY into one hash per minute, plus a set of
minutes not yet flushed), so no request waits for the monitor; a process that dies loses at most a second of
counts. On any other cache backend (local memory in the embedded run and tests) the dict is the store.
`drain()` takes the counts away atomically and
`ratelimit.services.ratelimit_monitor_flush` adds them to the database, every minute from Celery beat.

With local memory the counts live in the web process, which the beat worker cannot see, so there the web
process flushes its own closed minutes inline, at most once a minute (`maybe_flush_inline`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

Counts = dict[tuple[int, str, str], list[int]]  # (minute, group, key) -> [requests, refused]
PUSH_INTERVAL = 1.0  # seconds a web process batches its counts before one pipelined push to Redis
HASH_TTL = 3 * 3600  # unflushed minutes older than this are dropped (beat down for hours)
_SEP = "|"


def _is_redis() -> bool:
    return isinstance(caches["default"], RedisCache)


def _redis() -> Any:
    return caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]


def _minutes_key() -> str:
    return caches["default"].make_key("ratelimit:mon:minutes")


def _hash_key(minute: int) -> str:
    return caches["default"].make_key(f"ratelimit:mon:{minute}")


class _Local:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counts = defaultdict(lambda: [0, 0])
        self.last_inline_flush = 0
        self.last_push = 0.0
        self.timer_armed = False
        self.inline_flush = True


_local = _Local()


def now_minute() -> int:
    return int(time.time() // 60)


def record(*, group: str, key: str, refused: bool, minute: int | None = None) -> None:
    """Count one request (and a refusal) in this process; on Redis, a daemon timer pushes the process's counts
    a second after the first unpushed one, in one pipelined round trip, so no request waits for the monitor.
    Never raises: the monitor must not fail a request."""
    minute = now_minute() if minute is None else minute
    on_redis = _is_redis()
    with _local.lock:
        row = _local.counts[(minute, group, key)]
        row[0] += 1
        row[1] += int(refused)
        arm = on_redis and not _local.timer_armed
        _local.timer_armed = _local.timer_armed or arm
    if arm:
        # Hand over this thread's client: Django's caches are per thread, and a new one would mean a new pool.
        timer = threading.Timer(PUSH_INTERVAL, _timed_push, kwargs={"client": _redis()})
        timer.daemon = True
        timer.start()


def _timed_push(*, client: Any) -> None:
    _local.timer_armed = False
    push(client=client)


def push(*, client: Any = None) -> None:
    """Add this process's pending counts to the shared per-minute hashes in Redis."""
    with _local.lock:
        pending, _local.counts = _local.counts, defaultdict(lambda: [0, 0])
        _local.last_push = time.monotonic()
    if not pending:
        return
    try:
        pipe = (client or _redis()).pipeline(transaction=False)
        minutes = set()
        for (minute, group, key), (requests, refused) in pending.items():
            hkey = _hash_key(minute)
            pipe.hincrby(hkey, f"{group}{_SEP}{key}{_SEP}n", requests)
            if refused:
                pipe.hincrby(hkey, f"{group}{_SEP}{key}{_SEP}x", refused)
            minutes.add(minute)
        for minute in minutes:
            pipe.expire(_hash_key(minute), HASH_TTL)
        pipe.sadd(_minutes_key(), *minutes)
        pipe.execute()
    except Exception as exc:
        logger.warning("rate-limit monitor: %d counts not pushed (%s)", len(pending), type(exc).__name__)


def drain() -> Counts:
    """Take every pending count out of the counters (each count is returned by exactly one drain)."""
    if not _is_redis():
        with _local.lock:
            taken, _local.counts = dict(_local.counts), defaultdict(lambda: [0, 0])
        return taken
    push()  # this process's own pending counts first
    client = _redis()
    result: Counts = {}
    current = now_minute()
    for raw in client.smembers(_minutes_key()):
        minute = int(raw)
        pipe = client.pipeline(transaction=True)  # MULTI: read and delete as one step
        pipe.hgetall(_hash_key(minute))
        pipe.delete(_hash_key(minute))
        fields, _ = pipe.execute()
        if minute < current - 1:
            # Closed (with a minute's slack for clock skew between web nodes): no more increments will come.
            client.srem(_minutes_key(), raw)
        for raw_field, raw_value in fields.items():
            text = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            group, key, kind = text.rsplit(_SEP, 2)
            row = result.setdefault((minute, group, key), [0, 0])
            row[0 if kind == "n" else 1] += int(raw_value)
    return result


def restore(counts: Counts) -> None:
    """Put drained counts back (their database write failed), so the next flush stores them instead of losing
    them. Never raises; what cannot be put back is logged."""
    with _local.lock:
        for (minute, group, key), (requests, refused) in counts.items():
            row = _local.counts[(minute, group, key)]
            row[0] += requests
            row[1] += refused
    if _is_redis():
        push()


def maybe_flush_inline() -> None:
    """Local-memory backend only: flush closed minutes from the web process, at most once a minute."""
    if _is_redis() or not _local.inline_flush:
        return
    minute = now_minute()
    if minute == _local.last_inline_flush:
        return
    _local.last_inline_flush = minute
    with _local.lock:
        closed = {k: v for k, v in _local.counts.items() if k[0] < minute}
        for k in closed:
            del _local.counts[k]
    if closed:
        from ratelimit.services import ratelimit_monitor_store

        try:
            ratelimit_monitor_store(counts=closed)
        except Exception:
            logger.exception("rate-limit monitor flush failed; %d rows lost", len(closed))


def reset_local(*, inline_flush: bool) -> None:
    with _local.lock:
        _local.counts = defaultdict(lambda: [0, 0])
        _local.inline_flush = inline_flush
        _local.last_inline_flush = 0
