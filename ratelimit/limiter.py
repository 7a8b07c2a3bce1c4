"""The limiter: count one request against every enabled window of its group and decide.

Counting is django-ratelimit's `get_usage(increment=True)`: a fixed window per (group, key type, limit, key)
in the Django cache (Redis in production), an atomic add-then-increment, so N parallel requests against a
limit L admit at most L per window on every process (on Redis the same add-then-increment of every window in
one Lua call, with django-ratelimit's keys and windows: `_count`). Two refinements on top:

- A refused request gives its increments back, so hammering while refused does not eat the hourly budget of
  a group with several windows.
- For `auth` a successful response gives its slot back too (see middleware): the login limit counts failed
  and in-flight attempts, so a newsroom behind one NAT address is not locked out by colleagues logging in,
  while guessing passwords stays at 5 tries per 5 minutes per address.

If the cache is unreachable the limiter fails open (logged, counted in
`hlekkr_ratelimit_backend_errors_total`) except for the groups in `HLEKKR_RATELIMIT_FAIL_CLOSED_GROUPS`
(default: auth), which are refused: an outage must not open a password-guessing window. After a failure the
cache is not tried again for `CIRCUIT_SECONDS`, so an outage costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, get_usage

from hlekkr.accounts.models import ApiKey, User
from hlekkr.exceptions import RateLimited
from ratelimit import metrics, monitor
from ratelimit.client_ip import client_ip, rate_limit_address
from ratelimit.policies import Window, windows_for

# Who a limited request comes from: a signed-in user, an anonymous one, or nobody known yet.
Caller = User | AnonymousUser | None

logger = logging.getLogger(__name__)

CIRCUIT_SECONDS = 5.0
UNAVAILABLE_RETRY_AFTER = 30
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Usage:
    """The window closest to refusing, for the X-RateLimit-* headers."""

    limit: int
    remaining: int
    reset: int  # seconds until the window resets


@dataclass
class Decision:
    group: str
    refused: bool = False
    retry_after: int = 0
    usage: Usage | None = None
    unavailable: bool = False
    refund_on_success: bool = False
    success_is_redirect: bool = False  # HTML login forms: success is a redirect, a failure re-renders (200)
    counted: list[str] = field(default_factory=list)  # cache keys incremented by this request
    # The values of check(also_get=...) keys read in the counting round trip ({} for all absent); None when they
    # were not read (no window to count, the limiter off or its cache failing): the caller reads them itself.
    fetched: dict[str, Any] | None = None

    def error(self) -> RateLimited:
        if self.unavailable:
            return RateLimited(
                "The rate limiter is unavailable; this endpoint is closed until it recovers.",
                code="rate_limit_unavailable",
                retry_after=self.retry_after,
                details={"group": self.group},
            )
        return RateLimited(
            f"Too many requests in the `{self.group}` group. Retry after {self.retry_after} s.",
            retry_after=self.retry_after,
            details={"group": self.group, "limit": self.usage.limit if self.usage else None},
        )


class _Circuit:
    def __init__(self) -> None:
        self.open_until = 0.0
        self.last_log = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self, group: str, exc: BaseException) -> None:
        now = time.monotonic()
        self.open_until = now + CIRCUIT_SECONDS
        if now - self.last_log > CIRCUIT_SECONDS:  # one log line per outage interval, not one per request
            self.last_log = now
            logger.error("rate-limit cache unreachable (%s: %s); group %s", type(exc).__name__, exc, group)

    def reset(self) -> None:
        self.open_until = 0.0


circuit = _Circuit()


def group_for(view: Any, method: str | None) -> str:
    """The view's `ratelimit_group`; a view without one counts as `read` for safe methods, `upload` otherwise."""
    group = getattr(view, "ratelimit_group", None)
    if group:
        return str(group)
    return "read" if (method or "GET").upper() in SAFE_METHODS else "upload"


def _authenticated(user: Caller) -> TypeGuard[User]:
    return isinstance(user, User) and user.is_authenticated


def _key(key_type: str, request: Any, user: Caller, api_key: ApiKey | None) -> str:
    """Never contains a secret: API keys appear by their public prefix."""
    if key_type == "api_key" and api_key is not None:
        return f"key:{api_key.prefix}"
    if key_type in ("user", "api_key") and _authenticated(user):
        return f"user:{user.pk}"
    return f"ip:{rate_limit_address(client_ip(request))}"


def key_for(window: Window, request: Any, user: Caller, api_key: ApiKey | None) -> str:
    """What the window counts by."""
    return _key(window.key_type, request, user, api_key)


def monitor_key(request: Any, user: Caller, api_key: ApiKey | None) -> str:
    """Who the monitor counts: the most specific identity the request has (API key, then user, then IP)."""
    return _key("api_key", request, user, api_key)


def _fail_closed_groups() -> frozenset[str]:
    return frozenset(getattr(settings, "HLEKKR_RATELIMIT_FAIL_CLOSED_GROUPS", ("auth",)))


def _cache_key(rl_group: str, value: str, limit: int, period: int, window_end: int) -> str:
    return str(_make_cache_key(rl_group, window_end, (limit, period), value, ALL))


class _Planned(NamedTuple):
    """One window of a request: what django-ratelimit counts it by and under which cache key."""

    window: Window
    value: str
    limit: int
    rl_group: str
    window_end: int
    cache_key: str


def _unavailable(decision: Decision) -> Decision:
    closed = decision.group in _fail_closed_groups()
    metrics.backend_errors_total.labels(decision.group, "closed" if closed else "open").inc()
    if closed:
        decision.refused, decision.unavailable, decision.retry_after = True, True, UNAVAILABLE_RETRY_AFTER
    else:
        decision.usage = None
    return decision


def _usage(count: int, limit: int, window_end: int) -> dict[str, Any]:
    """django-ratelimit's `get_usage` answer for a count it made (core.get_usage's last lines)."""
    return {"count": count, "limit": limit, "should_limit": count > limit, "time_left": window_end - int(time.time())}


def _count(
    request: Any, plan: list[_Planned], decision: Decision, also_get: Sequence[str]
) -> Iterator[dict[str, Any] | None]:
    """django-ratelimit's usage of each planned window, counted.

    On Redis every window's add-then-increment (and the `also_get` reads) is one Lua call, and the usage is
    computed from its counts with the cache key and window end the plan already holds: calling `get_usage`
    would rebuild and rehash the same key per window only to read back the count. Elsewhere (local memory)
    `get_usage` counts as it always does, and `also_get` is one `get_many` after it."""
    count_many_and_get = getattr(cache, "count_many_and_get", None)
    if count_many_and_get is not None:
        ttls = {p.cache_key: p.window.period + EXPIRATION_FUDGE for p in plan}
        counts, decision.fetched = count_many_and_get(list(ttls.items()), list(also_get))
        for p in plan:
            yield _usage(counts[p.cache_key], p.limit, p.window_end)
        return
    for p in plan:
        yield get_usage(
            request, group=p.rl_group, key=lambda _g, _r, v=p.value: v, rate=(p.limit, p.window.period), increment=True
        )
    if also_get:
        try:
            decision.fetched = cache.get_many(list(also_get))
        except Exception:  # the caller's read, not the limiter's: it reads again (and decides) itself
            decision.fetched = None


def check(
    request: Any,
    *,
    group: str,
    user: Caller = None,
    api_key: ApiKey | None = None,
    also_get: Sequence[str] = (),
) -> Decision:
    """Count this request in every enabled window of `group` and decide. Never raises for cache trouble.

    `also_get`: cache keys the caller is about to read anyway, read in the same round trip as the counting
    (`decision.fetched`), so a request that needs one cached value still costs one round trip in all."""
    decision = Decision(group=group, refund_on_success=(group == "auth"))
    windows = windows_for(group)
    if not windows or not getattr(settings, "RATELIMIT_ENABLE", True):
        return decision
    if circuit.is_open():
        return _unavailable(decision)
    role = getattr(user, "role", None) if _authenticated(user) else None
    keys: dict[str, str] = {}  # by key type: the windows of a group and the monitor mostly share one
    plan = []
    for window in windows:
        if window.key_type not in keys:
            keys[window.key_type] = key_for(window, request, user, api_key)
        value = keys[window.key_type]
        limit = window.limit_for(role)
        rl_group = f"hlekkr:{window.group}:{window.key_type}"
        window_end = _get_window(value, window.period)
        cache_key = _cache_key(rl_group, value, limit, window.period, window_end)
        plan.append(_Planned(window, value, limit, rl_group, window_end, cache_key))
    refused_resets: list[int] = []
    tightest: Usage | None = None
    try:
        for p, usage in zip(plan, _count(request, plan, decision, also_get), strict=True):
            if usage is None:
                continue
            if usage["limit"] == 0 and usage["time_left"] == -1:
                # get_usage's own signal that the cache returned nothing (add and incr both failed).
                raise RuntimeError("cache returned no count")
            decision.counted.append(p.cache_key)
            reset = max(1, int(usage["time_left"]))
            current = Usage(limit=p.limit, remaining=max(0, p.limit - int(usage["count"])), reset=reset)
            if usage["should_limit"]:
                refused_resets.append(reset)
            if tightest is None or (current.remaining, -current.reset) < (tightest.remaining, -tightest.reset):
                tightest = current
    except Exception as exc:
        circuit.trip(group, exc)
        decision.fetched = None
        return _unavailable(decision)
    decision.usage = tightest
    if refused_resets:
        decision.refused = True
        decision.retry_after = max(refused_resets)
        metrics.refusals_total.labels(group).inc()
        refund(decision)
    who = keys.get("api_key") or monitor_key(request, user, api_key)
    monitor.record(group=group, key=who, refused=decision.refused)
    return decision


def refund(decision: Decision) -> None:
    """Give back this request's increments (a refused request, or a successful login)."""
    keys, decision.counted = decision.counted, []
    for key in keys:
        try:
            cache.decr(key)
        except ValueError:
            pass  # the window ended in between: nothing to give back
        except Exception as exc:
            circuit.trip(decision.group, exc)
            return


def enforce(
    request: Any,
    *,
    group: str,
    user: Caller = None,
    api_key: ApiKey | None = None,
    also_get: Sequence[str] = (),
) -> Decision:
    """check() and stash the decision on the Django request for the headers middleware; raise on refusal."""
    decision = check(request, group=group, user=user, api_key=api_key, also_get=also_get)
    request.ratelimit_decision = decision
    if decision.refused:
        raise decision.error()
    return decision
