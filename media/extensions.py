"""Detail providers: how a downstream app (analysis, review) adds to the media detail body without media
importing it.

    from media.extensions import register_detail_provider

    def analysis_detail(item, *, include_details: bool) -> dict:
        return {"analysis": {...}}

    register_detail_provider(analysis_detail)   # in AnalysisConfig.ready()

Each provider's dict is merged into `GET media/{id}/`. The rendered body is cached per (item, status,
include_details, outcome_version), so a provider whose output changes must make the owning app record the
change through media.services (which bumps outcome_version). List rows never call providers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DetailProvider = Callable[..., dict[str, Any]]

_providers: list[DetailProvider] = []


def register_detail_provider(fn: DetailProvider) -> DetailProvider:
    """Register `fn(item, *, include_details: bool) -> dict`; registering the same function twice is a no-op
    (ready() may run more than once in tests). Returns fn, so it works as a decorator."""
    if fn not in _providers:
        _providers.append(fn)
    return fn


def unregister_detail_provider(fn: DetailProvider) -> None:
    if fn in _providers:
        _providers.remove(fn)


def detail_extras(item: Any, *, include_details: bool) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for provider in list(_providers):
        extras.update(provider(item, include_details=include_details) or {})
    return extras
