"""Reads for the admin, `ratelimit_report`, and the operations engineer's alert rules and doctor."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from ratelimit.models import RateLimitHit

DEFAULT_ALERT_REFUSALS_PER_HOUR = 100


def _since(hours: float, now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=hours)


def refusals_last_hour(*, now: datetime | None = None) -> int:
    """429s in the last 60 minutes (flushed counts: they lag by at most the one-minute flush interval)."""
    total = RateLimitHit.objects.filter(minute__gte=_since(1, now)).aggregate(n=Sum("refused"))["n"]
    return int(total or 0)


def alert_threshold() -> int:
    return int(getattr(settings, "HLEKKR_RATELIMIT_ALERT_REFUSALS_PER_HOUR", DEFAULT_ALERT_REFUSALS_PER_HOUR))


def refusal_alert(*, threshold: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """{"firing", "refusals", "threshold"}: firing when refusals in the last hour exceed the threshold."""
    limit = alert_threshold() if threshold is None else threshold
    refusals = refusals_last_hour(now=now)
    return {"firing": refusals > limit, "refusals": refusals, "threshold": limit}


def top_offenders(*, hours: float = 1, limit: int = 10, now: datetime | None = None) -> list[dict[str, Any]]:
    """Keys with the most refusals in the window: [{"key", "refused", "requests", "groups"}], most refused first."""
    rows = (
        RateLimitHit.objects.filter(minute__gte=_since(hours, now), refused__gt=0)
        .values("key")
        .annotate(refused_total=Sum("refused"), requests_total=Sum("requests"))
        .order_by("-refused_total", "key")[:limit]
    )
    result: list[dict[str, Any]] = [
        {"key": r["key"], "refused": int(r["refused_total"]), "requests": int(r["requests_total"]), "groups": []}
        for r in rows
    ]
    if result:
        groups: dict[str, set[str]] = {}
        for key, group in RateLimitHit.objects.filter(
            minute__gte=_since(hours, now), refused__gt=0, key__in=[r["key"] for r in result]
        ).values_list("key", "group"):
            groups.setdefault(key, set()).add(group)
        for r in result:
            r["groups"] = sorted(groups.get(r["key"], set()))
    return result


def keys_above(
    *, requests_per_minute: int = 60, hours: float = 1, limit: int = 50, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The guide's `minuteRequests > 60`: (key, minute) pairs whose requests across all groups exceed the
    threshold, busiest first: [{"key", "minute", "requests", "refused"}]."""
    rows = (
        RateLimitHit.objects.filter(minute__gte=_since(hours, now))
        .values("key", "minute")
        .annotate(requests_total=Sum("requests"), refused_total=Sum("refused"))
        .filter(requests_total__gt=requests_per_minute)
        .order_by("-requests_total", "key")[:limit]
    )
    return [
        {
            "key": r["key"],
            "minute": r["minute"],
            "requests": int(r["requests_total"]),
            "refused": int(r["refused_total"]),
        }
        for r in rows
    ]
