"""Rate strings: `N/u` or `N/ku` with u in s, m, h, d (`60/m`, `5/5m`, `1000/h`), the syntax django-ratelimit reads.

Stricter than django-ratelimit's own parser, which silently accepts junk like `5/x`: a policy that cannot be
read must be refused in admin, not turn into a one-second window.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# Also used by the database CHECK constraint, so keep it to syntax both SQLite and PostgreSQL regexes read.
RATE_REGEX = r"^[1-9][0-9]{0,8}/([1-9][0-9]{0,5})?[smhd]$"
_RATE = re.compile(RATE_REGEX)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_PERIOD_SECONDS = 7 * 86400


def parse_rate(rate: str) -> tuple[int, int]:
    """`'5/5m'` -> `(5, 300)`: the request count and the window length in seconds. Raises ValueError."""
    rate = rate.strip()
    if not _RATE.match(rate):
        raise ValueError(f"{rate!r} is not a rate like 60/m, 5/5m or 1000/h")
    count, per = rate.split("/")
    multiplier = int(per[:-1]) if len(per) > 1 else 1
    period = multiplier * _UNIT_SECONDS[per[-1]]
    if period > MAX_PERIOD_SECONDS:
        raise ValueError(f"{rate!r}: windows longer than 7 days are not supported")
    return int(count), period


def validate_rate(rate: str) -> None:
    try:
        parse_rate(rate)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_rate") from exc


def describe_period(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{unit}" if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"
