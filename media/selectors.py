"""Reads used by the API: owner-scoped lookups, the filtered list and the cached detail body."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.db import connections
from django.db.models import Q, QuerySet
from psycopg.types.string import TextLoader

from hlekkr.accounts.models import User
from hlekkr.exceptions import NotFound
from media import conf, detail_cache, storage
from media.extensions import detail_extras
from media.models import FetchState, MediaItem, MediaStatus, UrlFetch

LIST_FIELDS = (
    "id",
    "owner_id",
    "kind",
    "mime_type",
    "size",
    "original_filename",
    "status",
    "created_at",
    "trust_score",
    "verdict",
    "final_verdict",
    "analysis_status",
    "review_requested",
    "priority",
)


def visible_to(owner: User, *, through: str = "") -> Q:
    """The one rule of owner scoping for media and everything derived from it: a client sees only its own,
    never deleted items. `through` is the lookup path from the queried model to its MediaItem, so derived
    objects are scoped by the same rule: `Analysis.objects.filter(visible_to(user, through="media"))`."""
    prefix = f"{through}__" if through else ""
    return Q(**{f"{prefix}owner": owner}) & ~Q(**{f"{prefix}status": MediaStatus.DELETED})


# The list row: exactly what media.api.serializers.MediaListRow documents, built from `.values()` without a
# serializer per row (that was half of a 25-row page's time).
LIST_ROW_FIELDS = (
    "id",
    "kind",
    "mime_type",
    "size",
    "original_filename",
    "status",
    "created_at",
    "trust_score",
    "verdict",
    "final_verdict",
    "analysis_status",
    "review_requested",
    "priority",
)


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):  # str() of an aware UTC datetime (_utc_text_as_str): "YYYY-MM-DD HH:MM:SS…+00:00"
        return value[:10] + "T" + value[11:-6] + "Z"
    return value.isoformat().replace("+00:00", "Z")


def media_list_row(values: dict[str, Any]) -> dict[str, Any]:
    row = {name: values[name] for name in LIST_ROW_FIELDS}
    row["id"] = str(row["id"])
    row["created_at"] = _iso(row["created_at"])
    return row


def media_items_visible_to(owner: User) -> QuerySet[MediaItem]:
    return MediaItem.objects.filter(visible_to(owner))


def media_item_get_owned(*, owner: User, media_id: Any) -> MediaItem:
    item = media_items_visible_to(owner).filter(pk=media_id).first()
    if item is None:
        raise NotFound("No such media item.", code="not_found")
    return item


def media_items_list(
    *,
    owner: User,
    status: str | None = None,
    kind: str | None = None,
    verdict: str | None = None,
    trust_min: int | None = None,
    trust_max: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[MediaItem]:
    """Own items with the list filters; `verdict` matches the human verdict when there is one, else the
    machine verdict (what the client would call "the verdict"). One query per page, whatever its size."""
    items = media_items_visible_to(owner).only(*LIST_FIELDS)
    if status:
        items = items.filter(status=status)
    if kind:
        items = items.filter(kind=kind)
    if verdict:
        items = items.filter(Q(final_verdict=verdict) | Q(final_verdict="", verdict=verdict))
    if trust_min is not None:
        items = items.filter(trust_score__gte=trust_min)
    if trust_max is not None:
        items = items.filter(trust_score__lte=trust_max)
    if created_after is not None:
        items = items.filter(created_at__gte=created_after)
    if created_before is not None:
        items = items.filter(created_at__lt=created_before)
    return items


def media_items_first_page(*, owner: User) -> Any:
    """The list's first page without filters, as `CursorPagination` reads a queryset (`order_by` with the
    list's ordering, then `[0:page_size + 1]`), from SQL that Django compiled for it once per process.

    Building and compiling the same queryset on every request was a fifth of a list read's CPU, and the first
    page is what clients poll. The SQL is Django's own, for `media_items_list(owner=...)` (so the owner rule is
    the one in `visible_to`); only the owner id changes between requests. Any other use (another ordering,
    a cursor's filter) gets the queryset itself."""
    return _FirstPage(owner)


class _FirstPage:
    def __init__(self, owner: User) -> None:
        self.owner = owner
        self.ordering: tuple[str, ...] = ()

    def _queryset(self) -> QuerySet[MediaItem, dict[str, Any]]:
        items = media_items_list(owner=self.owner).values(*LIST_ROW_FIELDS)
        return items.order_by(*self.ordering) if self.ordering else items

    def order_by(self, *fields: str) -> Any:
        if fields != FIRST_PAGE_ORDERING:
            return self._queryset().order_by(*fields)
        self.ordering = fields
        return self

    def __getattr__(self, name: str) -> Any:  # filter(), exclude(), ...: the real queryset
        return getattr(self._queryset(), name)

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        compiled = _first_page_sql(window.stop) if window.start in (0, None) and window.step is None else None
        if compiled is None or not self.ordering:
            return list(self._queryset()[window])
        sql, params, owner_slots, columns = compiled
        for slot in owner_slots:
            params[slot] = self.owner.pk
        connection = connections[MediaItem.objects.db]
        as_text = connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            if as_text:  # created_at as PostgreSQL writes it, turned into its str() below
                cursor.cursor.adapters.register_loader("timestamptz", TextLoader)
            cursor.execute(sql, params)
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        if as_text:
            for row in rows:
                row["created_at"] = _utc_text_as_str(row["created_at"])
                if row["created_at"] is None:  # not UTC in DateStyle ISO: let the ORM load the page
                    return list(self._queryset()[window])
        return rows


# How PostgreSQL writes a timestamptz as text in a UTC session under DateStyle ISO (Django's connections):
# fractional seconds without trailing zeros, none when zero. Years past 9999, BC and infinities do not match.
_PG_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00")


def _utc_text_as_str(text: Any) -> str | None:
    """str() of the aware UTC datetime PostgreSQL wrote as `text` ("2026-01-02 03:04:05.12+00" ->
    "2026-01-02 03:04:05.120000+00:00"), which is also what CursorPagination puts in a cursor; None when `text`
    is not in that form. Loading 25 timestamps into datetimes and formatting them back was ~8 % of a page."""
    match = _PG_UTC_TEXT.fullmatch(text) if isinstance(text, str) else None  # bytes under SQL_ASCII
    if match is None:
        return None
    fraction = match.group(1)
    return text[:19] + (fraction.ljust(7, "0") if fraction else "") + "+00:00"


FIRST_PAGE_ORDERING = ("-created_at",)
_first_page_sql_cache: dict[int, tuple[str, list[Any], list[int], tuple[str, ...]] | None] = {}


def _first_page_sql(limit: int) -> tuple[str, list[Any], list[int], tuple[str, ...]] | None:
    """(SQL, parameters, the positions of the owner id in them, column names) of the first page of `limit`
    rows, or None when it cannot be reused (then the ORM answers). Compiled for two made-up owners: the SQL must
    be the same text, and the parameters may differ only where one has the first owner's id and the other the
    second's; a row converter Django would apply also rules it out."""
    if limit in _first_page_sql_cache:
        found = _first_page_sql_cache[limit]
        return None if found is None else (found[0], list(found[1]), found[2], found[3])

    def compile_for(owner_id: int) -> tuple[str, list[Any], tuple[str, ...], bool]:
        items = media_items_list(owner=User(pk=owner_id)).values(*LIST_ROW_FIELDS).order_by(*FIRST_PAGE_ORDERING)
        compiler = items[:limit].query.get_compiler(items.db)
        sql, params = compiler.as_sql()
        converters = bool(compiler.get_converters([expression for expression, _, _ in compiler.select]))
        return sql, list(params), tuple(items.query.values_select), converters

    one, two = compile_for(-1), compile_for(-2)
    slots = [i for i, (a, b) in enumerate(zip(one[1], two[1], strict=True)) if a != b]
    reusable = (
        one[0] == two[0]
        and not one[3]
        and all(one[1][i] == -1 and two[1][i] == -2 for i in slots)
        and len(slots) >= 1
        and one[2] == LIST_ROW_FIELDS
    )
    _first_page_sql_cache[limit] = (one[0], one[1], slots, one[2]) if reusable else None
    return _first_page_sql(limit)


def detail_etag(item: MediaItem, *, include_details: bool) -> str:
    """Changes whenever the rendered detail can change: a new outcome, a status change, the details flag."""
    raw = f"{item.id}:{item.status}:{item.outcome_version}:{int(include_details)}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def media_item_detail(
    *,
    owner: User,
    media_id: Any,
    include_details: bool,
    looked_up: tuple[dict[str, Any] | None, str | None] | None = None,
) -> tuple[dict[str, Any], str]:
    """(body, ETag) of an owner's item. From the detail cache when it holds the item's current body for this
    owner (no database query; media/detail_cache.py); otherwise read, checked for ownership, rendered and
    remembered. Another owner's, a deleted or an unknown item is NotFound either way. `looked_up`: what
    `detail_cache.lookup` answered for this request already (the view's fast path read it), not read again."""
    if looked_up is None:
        looked_up = detail_cache.lookup(media_id, owner_id=owner.pk, include_details=include_details)
    entry, gen = looked_up
    if entry is not None:
        body = dict(entry["body"])
        if body.get("download_url"):
            # Signed afresh for every response, so it always has its whole documented lifetime ahead of it.
            body["download_url"] = storage.download_url(entry["storage_key"], expires=conf.download_url_ttl_seconds())
        return body, entry["etag"]
    item = media_item_get_owned(owner=owner, media_id=media_id)
    body = _render_detail(item, include_details=include_details)
    etag = detail_etag(item, include_details=include_details)
    detail_cache.store(
        item.id,
        gen=gen,
        owner_id=owner.pk,
        include_details=include_details,
        etag=etag,
        body=body,
        storage_key=item.storage_key,
    )
    return dict(body), etag


def media_item_detail_body(item: MediaItem, *, include_details: bool) -> dict[str, Any]:
    """The detail body of an item already in hand (an upload's response), rendered now."""
    return _render_detail(item, include_details=include_details)


def media_item_download_url(item: MediaItem) -> str | None:
    """A short-lived download URL for a stored item's original (None when there are no bytes to hand out)."""
    if item.status == MediaStatus.STORED and item.storage_key:
        return storage.download_url(item.storage_key, expires=conf.download_url_ttl_seconds())
    return None


def _host(url: str) -> str:
    try:
        return (urlsplit(url).netloc or "").lower()
    except ValueError:
        return ""


def url_fetch_row(job: UrlFetch) -> dict[str, Any]:
    """A fetch as evidence: where the client pointed, every hop, where the bytes finally came from."""
    media_url = job.final_url
    return {
        "url": job.source_url,
        "page_url": job.page_url or None,
        "final_url": media_url or None,
        "redirects": max(0, len(job.hops) - (2 if job.page_url else 1)),
        "hops": list(job.hops),
        # A client reading the evidence should see at a glance that the bytes came from somewhere else.
        "other_host": bool(media_url) and _host(media_url) != _host(job.source_url),
        "content_type": job.content_type or None,
        "state": job.state,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "requested_at": job.created_at.isoformat().replace("+00:00", "Z"),
        "finished_at": job.finished_at.isoformat().replace("+00:00", "Z") if job.finished_at else None,
    }


def media_item_sources(item: MediaItem) -> dict[str, Any]:
    """`source`: the fetch this item was created by (null for an upload); `also_fetched_from`: other URLs
    whose bytes turned out to be this item. One query."""
    jobs = list(UrlFetch.objects.filter(Q(media=item) | Q(resolved_media=item)).order_by("created_at")[:21])
    own = next((job for job in jobs if job.media_id == item.pk), None)
    return {
        "source": url_fetch_row(own) if own is not None else None,
        "also_fetched_from": [url_fetch_row(job) for job in jobs if job is not own][:20],
    }


def duplicate_fetch_target(*, owner: User, media_id: Any) -> MediaItem | None:
    """For a placeholder whose fetch resolved to an item the owner already had: that item (still visible)."""
    job = (
        UrlFetch.objects.select_related("resolved_media")
        .filter(owner=owner, media_id=media_id, state=FetchState.DUPLICATE)
        .first()
    )
    target = job.resolved_media if job is not None else None
    if target is None or target.status == MediaStatus.DELETED:
        return None
    return target


def media_item_facts(item: MediaItem) -> dict[str, Any]:
    """What the bytes are (identity, type, size, dimensions), where to fetch them and, for items fetched from
    a URL, where they came from: the part of the detail body other renderings of an item (the evidence bundle)
    share, so both describe an item the same way."""
    return {
        "id": str(item.id),
        "kind": item.kind,
        "mime_type": item.mime_type,
        "size": item.size,
        "sha256": item.sha256,
        "original_filename": item.original_filename,
        "status": item.status,
        "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
        "width": item.width,
        "height": item.height,
        "duration_seconds": item.duration_seconds,
        "download_url": media_item_download_url(item),
        **media_item_sources(item),
    }


def _render_detail(item: MediaItem, *, include_details: bool) -> dict[str, Any]:
    body = media_item_facts(item)
    body.update(
        {
            "review_requested": item.review_requested,
            "priority": item.priority,
            "trust_score": item.trust_score,
            "verdict": item.verdict,
            "final_verdict": item.final_verdict,
            "analysis_status": item.analysis_status,
            "outcome_version": item.outcome_version,
            "download_url_expires_in": conf.download_url_ttl_seconds() if body["download_url"] else None,
        }
    )
    body.update(detail_extras(item, include_details=include_details))
    return body
