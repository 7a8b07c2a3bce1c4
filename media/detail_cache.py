"""The cache behind `GET media/{id}/`: a cached read costs one cache round trip and no database query.

Keys:
- `media:detail:gen:{id}`: a random token, replaced whenever the item changes. The model does it for every ORM
  write (`MediaItem.save`/`delete`, and the queryset's `update`/`delete`, media/models.py), so no writer has
  to remember to.
- `media:detail:gen:*`: one token for all items, replaced by a queryset write whose rows cannot be named
  without a query (e.g. `filter(status=...).update(...)`, a sweep): rare, and it retires every cached body.
- `media:detail:v3:{id}:{0|1}` (with/without details): `{owner_id, gen, etag, body, storage_key, json}`; `gen`
  is the pair of both tokens when it was rendered; `json` is the body already rendered as the API renders it,
  cut where the download URL goes (`(head, tail)`, tail None without one), so a hit is answered with bytes:
  the URL is signed afresh for each response and put between the two.

A read fetches the three in one MGET (the API's detail view has the rate limiter read them in its own round
trip: `read_keys`, `entry_from`) and serves the entry only when its `gen` is the current pair and its owner is
the caller; anything else (no entry, another generation, another owner, the cache down) falls back to the
database, which decides ownership and deletion as before. Why a generation and not a delete on commit: a reader
that loaded the old row just before a write commits would store the old body just after the delete and serve
it for the whole TTL; with the generation it stores it under the old token, which no read accepts.

The window: a reader that read the row before a write committed can store and serve the old body between the
commit and the second bump (the on-commit callback, microseconds later). If the bump itself fails (cache
unreachable), the previous entry can be served until it expires (`DETAIL_CACHE_SECONDS`); that is logged.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from django.core.cache import cache
from django.db import transaction
from rest_framework.renderers import JSONRenderer

from media import conf

logger = logging.getLogger(__name__)


ALL_ITEMS = "*"


def enabled() -> bool:
    """Only with a cache every process shares (HLEKKR_DETAIL_CACHE_SHARED, on with Redis): see settings.py."""
    from django.conf import settings

    return bool(getattr(settings, "HLEKKR_DETAIL_CACHE_SHARED", False))


def gen_key(item_id: Any) -> str:
    return f"media:detail:gen:{item_id}"


def entry_key(item_id: Any, include_details: bool) -> str:
    return f"media:detail:v3:{item_id}:{int(include_details)}"


def read_keys(item_id: Any, *, include_details: bool) -> list[str]:
    """What a lookup reads: the item's generation, the all-items generation and the entry."""
    return [gen_key(item_id), gen_key(ALL_ITEMS), entry_key(item_id, include_details)]


def _gen_ttl() -> int:
    # Outlives every entry written under it; when it expires first, reads miss (safe), they never serve stale.
    return conf.DETAIL_CACHE_SECONDS * 2


def lookup(item_id: Any, *, owner_id: Any, include_details: bool) -> tuple[dict[str, Any] | None, str | None]:
    """(entry, current generation). The entry is None unless it is current and the caller's."""
    if not enabled():
        return None, None
    keys = read_keys(item_id, include_details=include_details)
    try:
        found = cache.get_many(keys)
    except Exception as exc:  # the cache being down costs a database read, never the request
        logger.warning("media detail cache unreadable (%s)", type(exc).__name__)
        return None, None
    return entry_from(found, keys, owner_id=owner_id)


def entry_from(found: dict[str, Any], keys: list[str], *, owner_id: Any) -> tuple[dict[str, Any] | None, str | None]:
    """lookup() on values already read ({key: value} of `read_keys`, absent keys left out)."""
    gkey, akey, ekey = keys
    item_gen, all_gen, entry = found.get(gkey), found.get(akey), found.get(ekey)
    gen = f"{item_gen}/{all_gen}" if item_gen is not None and all_gen is not None else None
    if entry is not None and gen is not None and entry.get("gen") == gen and entry.get("owner_id") == owner_id:
        return entry, gen
    return None, gen


def store(
    item_id: Any,
    *,
    gen: str | None,
    owner_id: Any,
    include_details: bool,
    etag: str,
    body: Any,
    storage_key: str = "",
) -> None:
    """Remember a body rendered from a row read after `gen` was read (or a fresh generation when none was)."""
    if not enabled():
        return
    try:
        if gen is None:
            tokens = [_ensure_token(gen_key(item_id)), _ensure_token(gen_key(ALL_ITEMS))]
            if None in tokens:
                return
            gen = "/".join(str(token) for token in tokens)
        # The storage key lets a hit sign a fresh download URL without the row.
        entry = {
            "owner_id": owner_id,
            "gen": gen,
            "etag": etag,
            "body": body,
            "storage_key": storage_key,
            "json": rendered_template(body),
        }
        cache.set(entry_key(item_id, include_details), entry, conf.DETAIL_CACHE_SECONDS)
    except Exception as exc:
        logger.warning("media detail cache not written (%s)", type(exc).__name__)


def rendered_template(body: dict[str, Any]) -> tuple[bytes, bytes | None]:
    """The body as the API's JSON renderer writes it, cut around the download URL's value: (head, tail), or
    (all of it, None) when it has no download URL. A random marker stands in for the URL while rendering, so no
    text in the body (a file name) can be taken for it."""
    renderer = JSONRenderer()
    if not body.get("download_url"):
        return bytes(renderer.render(body)), None
    marker = secrets.token_hex(16)
    rendered = bytes(renderer.render({**body, "download_url": marker}))
    head, found, tail = rendered.partition(f'"{marker}"'.encode())
    if not found:  # cannot happen with a string marker; then render the whole body per hit instead
        raise ValueError("download URL marker not found in the rendered body")
    return head, tail


def render_hit(template: tuple[bytes, bytes | None], download_url: str | None) -> bytes:
    """The bytes of a cached body with this response's download URL in place."""
    head, tail = template
    if tail is None:
        return head
    return head + json.dumps(download_url, ensure_ascii=False).encode() + tail


def _ensure_token(key: str) -> Any:
    fresh = secrets.token_hex(8)
    return fresh if cache.add(key, fresh, _gen_ttl()) else cache.get(key)


def _bump(item_id: Any) -> None:
    try:
        cache.set(gen_key(item_id), secrets.token_hex(8), _gen_ttl())
    except Exception:
        logger.exception(
            "media detail cache: generation of %s not bumped; its cached body may be served for up to %s s",
            item_id,
            conf.DETAIL_CACHE_SECONDS,
        )


def item_changed(item_id: Any) -> None:
    """The item is being changed (called by the model on every ORM write): every cached detail body of it stops
    being served. Bumped now and again after commit: the first retires what is cached (a rollback only costs a
    re-render), the second what a reader stored from the old row while we were writing."""
    _bump(item_id)
    transaction.on_commit(lambda: _bump(item_id))


def rows_changed(queryset: Any) -> None:
    """A queryset write: retire the bodies of the items it names by primary key (`filter(pk=...)`,
    `filter(pk__in=...)`), or of every item when it selects rows some other way."""
    ids = _primary_keys(queryset)
    if ids is None:
        item_changed(ALL_ITEMS)
        return
    for item_id in ids:
        item_changed(item_id)


def _primary_keys(queryset: Any) -> list[Any] | None:
    """The primary keys a queryset's WHERE pins with `pk=` or `pk__in=` (ANDed with anything else), or None."""
    from django.db.models.lookups import Exact, In
    from django.db.models.sql.where import AND

    where = queryset.query.where
    if where.connector != AND or where.negated:
        return None
    for child in where.children:
        target = getattr(getattr(child, "lhs", None), "target", None)
        if target is None or not getattr(target, "primary_key", False):
            continue
        if isinstance(child, Exact) and not hasattr(child.rhs, "resolve_expression"):
            return [child.rhs]
        if isinstance(child, In) and isinstance(child.rhs, list | tuple | set | frozenset):
            return list(child.rhs)
    return None
