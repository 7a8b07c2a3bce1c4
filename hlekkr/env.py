"""Typed readers for settings from the environment. Each fails loudly on nonsense instead of guessing.

Only hlekkr/settings.py calls them (apps read `django.conf.settings`). The bounds each numeric reader is given are
remembered under the variable's name, and `check_bounds` applies them again at start-up to the final value of the
setting of the same name, so a value written into a settings module (or a test settings file) is held to the same
limits as one from the environment.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Bounds:
    kind: str  # "an integer" or "a finite number"
    minimum: float | None
    maximum: float | None


# Setting name -> the bounds its env reader was given (filled as hlekkr/settings.py runs).
DECLARED_BOUNDS: dict[str, Bounds] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def _env_number(name: str, default: N, parse: Callable[[str], N], kind: str, minimum: N | None, maximum: N | None) -> N:
    DECLARED_BOUNDS[name] = Bounds(kind, minimum, maximum)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind}, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return _env_number(name, default, int, "an integer", minimum, maximum)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # "nan" passes every bound check (all comparisons are false) and would silently disable a budget or limit.
        raise ValueError(text)
    return value


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    return _env_number(name, default, _finite_float, "a finite number", minimum, maximum)


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> list[str]:
    """A comma-separated list of IPs or CIDRs (host bits allowed). Checked here, at start-up, so a typo fails the
    deploy instead of turning into a 500 on the first request that consults the list."""
    entries = env_list(name)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list IP addresses or CIDRs, got {entry!r}") from None
    return entries


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    file_var = f"{name}_FILE"
    path = os.environ.get(file_var)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{file_var} points at {path!r}, which cannot be read: {exc}") from None
    return os.environ.get(name, default)


def parse_database_url(url: str) -> dict[str, object]:
    """postgres://user:pass@host:port/name?sslmode=require -> Django DATABASES entry (PostgreSQL or SQLite)."""
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL names no database")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": dict(parse_qsl(parsed.query)),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if not path or path == "/":
            raise ImproperlyConfigured("DATABASE_URL sqlite:///path needs a path")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (postgres or sqlite)")


def check_bounds(settings: Any) -> None:
    """Raise ImproperlyConfigured when a setting declared through env_int/env_float holds a value outside the
    bounds it was declared with (or of the wrong type), wherever the value came from. Run at start-up
    (hlekkr.ops.apps.OpsConfig.ready), so every process - web, worker, beat, manage.py - refuses to start."""
    for name, bounds in DECLARED_BOUNDS.items():
        if not hasattr(settings, name):
            continue
        value = getattr(settings, name)
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        if wrong_type or (bounds.kind == "an integer" and isinstance(value, float)) or not math.isfinite(value):
            raise ImproperlyConfigured(f"{name} must be {bounds.kind}, got {value!r}")
        if bounds.minimum is not None and value < bounds.minimum:
            raise ImproperlyConfigured(f"{name} must be >= {bounds.minimum}, got {value}")
        if bounds.maximum is not None and value > bounds.maximum:
            raise ImproperlyConfigured(f"{name} must be <= {bounds.maximum}, got {value}")
