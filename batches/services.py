"""Every write of the batches app (docs/batches.md).

A batch is a list of entries, each a client's own stored media item (`media_id`) or a URL to fetch. Items start
`waiting`; `batch_dispatch` starts them while the client has fewer than its concurrency cap running, so one large
batch cannot take every worker: its fetches and analyses run on the `batch` queue, behind interactive work, and
at most `cap` of them per client at a time. Items settle from domain events (`media.fetch_finished`,
`analysis.completed`, `analysis.failed`) inside the publishing transaction; a periodic reconciler settles what an
event missed. When no item is open the batch completes and `batch.completed` is published exactly once (a
conditional UPDATE running -> completed), which the webhooks turn into one delivery per subscribed endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from analysis.services import analysis_request_rerun
from batches.models import ITEM_OPEN_STATES, Batch, BatchItem, BatchItemState, BatchStatus
from hlekkr import events
from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import Conflict, HlekkrError, ValidationFailed
from media import fetch
from media.models import FetchState, MediaItem, MediaStatus
from media.selectors import media_items_visible_to
from media.services import url_fetch_start

logger = logging.getLogger(__name__)
MAX_ITEMS = 500
IN_PROGRESS = ("queued", "running")  # MediaItem.analysis_status values of a run not yet finished


def concurrency_cap() -> int:
    """Items of one client's batches fetching or being analysed at once (default 8)."""
    return int(settings.HLEKKR_BATCH_CONCURRENCY_PER_CLIENT)


# --- creation ------------------------------------------------------------------------------------------------
def _problem(index: int, *, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "code": code, "message": message, **extra}


def _parse_entries(entries: list[Any]) -> tuple[list[tuple[int, uuid.UUID | None, str]], list[dict[str, Any]]]:
    parsed: list[tuple[int, uuid.UUID | None, str]] = []
    problems: list[dict[str, Any]] = []
    seen_media: dict[uuid.UUID, int] = {}
    seen_urls: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) not in ({"media_id"}, {"url"}):
            problems.append(
                _problem(index, code="invalid_entry", message='Each entry is {"media_id": ...} or {"url": ...}.')
            )
            continue
        if "media_id" in entry:
            try:
                media_id = uuid.UUID(str(entry["media_id"]))
            except ValueError:
                problems.append(_problem(index, code="unknown_media", message="Not one of your media items."))
                continue
            if media_id in seen_media:
                problems.append(
                    _problem(index, code="duplicate_entry", message="Listed twice.", duplicate_of=seen_media[media_id])
                )
                continue
            seen_media[media_id] = index
            parsed.append((index, media_id, ""))
            continue
        url = entry["url"].strip() if isinstance(entry["url"], str) else ""
        try:
            fetch.check_url_form(url)
        except HlekkrError as error:
            problems.append(_problem(index, code=error.code, message=error.message))
            continue
        if url in seen_urls:
            problems.append(
                _problem(index, code="duplicate_entry", message="Listed twice.", duplicate_of=seen_urls[url])
            )
            continue
        seen_urls[url] = index
        parsed.append((index, None, url))
    return parsed, problems


def batch_create(*, owner: User, entries: list[Any]) -> Batch:
    """Check every entry, then record the batch with its items `waiting` and dispatch after commit.

    Refusals are one 400 naming every offending entry (`details.entries`: index, code, message): `invalid_entry`,
    `duplicate_entry` (with `duplicate_of`), `unknown_media` (not an id of the caller's items: unknown ids and
    other clients' ids alike, so a batch cannot probe which ids exist), `media_not_stored`, and the URL form codes
    (`url_invalid`, `url_scheme_not_allowed`). More than 500 entries is `batch_too_large`, none `batch_empty`.
    URLs are resolved and checked by the worker that fetches them (an address refusal fails that item)."""
    if not entries:
        raise ValidationFailed("A batch needs at least one item.", code="batch_empty")
    if len(entries) > MAX_ITEMS:
        raise ValidationFailed(
            f"A batch holds at most {MAX_ITEMS} items; this one has {len(entries)}.",
            code="batch_too_large",
            details={"max_items": MAX_ITEMS, "count": len(entries)},
        )
    parsed, problems = _parse_entries(entries)
    wanted = [media_id for _, media_id, _ in parsed if media_id is not None]
    found = {item.pk: item for item in media_items_visible_to(owner).filter(pk__in=wanted).only("id", "status")}
    for index, media_id, _ in parsed:
        if media_id is None:
            continue
        item = found.get(media_id)
        if item is None:
            problems.append(_problem(index, code="unknown_media", message="Not one of your media items."))
        elif item.status != MediaStatus.STORED:
            problems.append(_problem(index, code="media_not_stored", message=f"The item is {item.status}, not stored."))
    if problems:
        problems.sort(key=lambda p: p["index"])
        raise ValidationFailed(
            f"{len(problems)} of the {len(entries)} entries cannot be analysed; nothing was started.",
            code="batch_invalid",
            details={"entries": problems},
        )
    with transaction.atomic():
        batch = Batch.objects.create(owner=owner, total=len(parsed))
        BatchItem.objects.bulk_create(
            BatchItem(batch=batch, owner=owner, position=index, media_id=media_id, url=url)
            for index, media_id, url in parsed
        )
        audit_record(
            actor=owner,
            action="batch.created",
            target=batch,
            payload={"total": batch.total, "media": len(wanted), "urls": batch.total - len(wanted)},
        )
        owner_id = owner.pk
        transaction.on_commit(lambda: batch_dispatch(owner_id=owner_id), robust=True)
    return batch


# --- dispatching ---------------------------------------------------------------------------------------------
def _start_media_item(item: BatchItem, media: MediaItem | None) -> str:
    """The state an item with a stored media item starts in; a new run (batch queue) when none is usable."""
    if media is None or media.status != MediaStatus.STORED:
        item.error_code = "media_not_stored"
        return BatchItemState.FAILED
    if media.analysis_status == "completed":
        return BatchItemState.DONE
    if media.analysis_status not in IN_PROGRESS:  # never analysed, or the last run failed
        with contextlib.suppress(Conflict):  # a run started meanwhile: follow it
            analysis_request_rerun(media=media, user=item.owner)
    return BatchItemState.RUNNING


def _start(item: BatchItem) -> None:
    now = timezone.now()
    if item.url:
        try:
            job = url_fetch_start(owner=item.owner, url=item.url, queue="batch")
        except HlekkrError as error:
            item.state, item.error_code, item.finished_at = BatchItemState.FAILED, error.code[:64], now
        else:
            item.fetch_media_id, item.state = job.media_id, BatchItemState.RUNNING
    else:
        item.state = _start_media_item(item, item.media)
        if item.state != BatchItemState.RUNNING:
            item.finished_at = now
    item.started_at = now
    item.save(update_fields=["state", "fetch_media", "error_code", "started_at", "finished_at"])


def batch_dispatch(*, owner_id: Any) -> int:
    """Start the owner's waiting items (oldest batch first) while fewer than the cap are running; returns how
    many were started. The owner's running batches are locked, so two dispatchers never overshoot the cap."""
    started = 0
    with transaction.atomic():
        batch_ids = list(
            Batch.objects.select_for_update().filter(owner_id=owner_id, status=BatchStatus.RUNNING).values_list("pk")
        )
        if not batch_ids:
            return 0
        cap = concurrency_cap()
        while True:
            free = cap - BatchItem.objects.filter(owner_id=owner_id, state=BatchItemState.RUNNING).count()
            if free <= 0:
                break
            waiting = list(
                BatchItem.objects.select_related("owner", "media")
                .filter(owner_id=owner_id, state=BatchItemState.WAITING)
                .order_by("batch__created_at", "batch_id", "position")[:free]
            )
            if not waiting:
                break
            for item in waiting:
                _start(item)
                started += 1
        _complete_finished({pk for (pk,) in batch_ids})
    return started


# --- settling --------------------------------------------------------------------------------------------------
def _settle(items: Iterable[BatchItem], state: str, *, code: str = "") -> set[Any]:
    ids = [item.pk for item in items]
    if not ids:
        return set()
    BatchItem.objects.filter(pk__in=ids, state=BatchItemState.RUNNING).update(
        state=state, error_code=code, finished_at=timezone.now()
    )
    return set(BatchItem.objects.filter(pk__in=ids).values_list("batch_id", flat=True))


def batch_items_settle_analysis(*, media_id: Any, completed: bool) -> None:
    """`analysis.completed` / `analysis.failed` of a media item: its running batch items are done / failed."""
    items = list(BatchItem.objects.filter(media_id=media_id, state=BatchItemState.RUNNING).only("pk"))
    if completed:
        _complete_finished(_settle(items, BatchItemState.DONE))
    else:
        _complete_finished(_settle(items, BatchItemState.FAILED, code="analysis_failed"))


def batch_items_settle_fetch(*, placeholder_id: Any, state: str, resolved_id: Any, error_code: str) -> None:
    """`media.fetch_finished`: a refused fetch fails its items; a stored one waits for its analysis; bytes the
    client already had follow that item (its verdict when it has one, else its run or a new one)."""
    items = list(
        BatchItem.objects.select_related("owner")
        .filter(fetch_media_id=placeholder_id, state=BatchItemState.RUNNING)
        .order_by("pk")
    )
    if not items:
        return
    if state == FetchState.FAILED or not resolved_id:
        if error_code:
            _complete_finished(_settle(items, BatchItemState.FAILED, code=error_code[:64]))
        else:
            _complete_finished(_settle(items, BatchItemState.FAILED, code="fetch_failed"))
        return
    BatchItem.objects.filter(pk__in=[i.pk for i in items]).update(media_id=resolved_id)
    if state == FetchState.STORED:
        return  # its analysis was queued with it (batch queue); analysis.completed settles it
    media = MediaItem.objects.filter(pk=resolved_id).first()
    batch_ids: set[Any] = set()
    for item in items:
        new_state = _start_media_item(item, media)
        if new_state != BatchItemState.RUNNING:
            batch_ids |= _settle([item], new_state, code=item.error_code)
    _complete_finished(batch_ids)


def _complete_finished(batch_ids: set[Any]) -> None:
    """Complete each batch with no open item left; publish `batch.completed` once per batch."""
    for batch_id in batch_ids:
        if BatchItem.objects.filter(batch_id=batch_id, state__in=ITEM_OPEN_STATES).exists():
            continue
        now = timezone.now()
        if not Batch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
            status=BatchStatus.COMPLETED, completed_at=now
        ):
            continue  # completed by someone else
        batch = Batch.objects.get(pk=batch_id)
        counts = batch_counts(batch)
        audit_record(actor=None, action="batch.completed", target=batch, payload=counts)
        events.publish(
            events.BATCH_COMPLETED,
            {
                "batch_id": str(batch.pk),
                "owner_id": batch.owner_id,
                "total": batch.total,
                "done": counts["done"],
                "failed": counts["failed"],
            },
        )


def batch_counts(batch: Batch) -> dict[str, int]:
    rows = dict(BatchItem.objects.filter(batch=batch).values_list("state").annotate(n=Count("pk")))
    return {state: int(rows.get(state, 0)) for state in BatchItemState.values}


# --- the reconciler ----------------------------------------------------------------------------------------------
def batches_reconcile(*, limit: int = 500) -> dict[str, int]:
    """Beat: settle running items whose event was missed, dispatch owners with waiting items, complete batches
    with nothing open. Idempotent; the rows are the record, never the events."""
    settled = 0
    finished = BatchItem.objects.filter(
        state=BatchItemState.RUNNING, media__analysis_status__in=("completed", "failed")
    ).values_list("media_id", "media__analysis_status")[:limit]
    for media_id, analysis_status in finished:
        with transaction.atomic():
            batch_items_settle_analysis(media_id=media_id, completed=analysis_status == "completed")
        settled += 1
    from media.models import UrlFetch

    ended = (
        UrlFetch.objects.filter(
            media_id__in=BatchItem.objects.filter(state=BatchItemState.RUNNING, media__isnull=True).values(
                "fetch_media_id"
            ),
            state__in=(FetchState.STORED, FetchState.DUPLICATE, FetchState.FAILED),
        )
        .values_list("media_id", "state", "resolved_media_id", "error_code")
        .order_by()[:limit]
    )
    for placeholder_id, state, resolved_id, error_code in ended:
        with transaction.atomic():
            batch_items_settle_fetch(
                placeholder_id=placeholder_id, state=state, resolved_id=resolved_id, error_code=error_code
            )
        settled += 1
    owners = set(
        BatchItem.objects.filter(state=BatchItemState.WAITING).values_list("owner_id", flat=True).distinct()[:limit]
    )
    dispatched = sum(batch_dispatch(owner_id=owner_id) for owner_id in owners)
    with transaction.atomic():
        stale = (
            Batch.objects.filter(status=BatchStatus.RUNNING)
            .exclude(Q(items__state__in=ITEM_OPEN_STATES))
            .values_list("pk", flat=True)[:limit]
        )
        _complete_finished(set(stale))
    return {"settled": settled, "dispatched": dispatched}
