"""Thin Celery tasks of the media app."""

from __future__ import annotations

from celery import shared_task

from hlekkr.exceptions import TransientError
from media.services import (
    media_storage_sweep_orphans,
    multipart_uploads_abort_stale,
    url_fetch_run,
    url_fetches_reconcile,
)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=600,
    time_limit=660,
)
def abort_stale_uploads_task(self: object) -> int:
    """Abort multipart uploads left incomplete for 24 h (HLEKKR_STALE_UPLOAD_HOURS); idempotent."""
    return multipart_uploads_abort_stale()


@shared_task(bind=True, acks_late=True, soft_time_limit=300, time_limit=330)
def fetch_url_task(self: object, fetch_id: str) -> None:
    """Fetch a client's URL and store its media (media.services.url_fetch_run); idempotent, re-sent by the
    reconciler when lost. Not retried on refusals: those are final and recorded on the fetch."""
    url_fetch_run(fetch_id=fetch_id)


@shared_task(bind=True, acks_late=True, soft_time_limit=120, time_limit=150)
def reconcile_fetches_task(self: object) -> dict[str, int]:
    """Every minute: re-send fetches that were lost or whose worker died."""
    return url_fetches_reconcile()


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=600,
    time_limit=660,
)
def sweep_orphans_task(self: object) -> int:
    """Delete stored bytes whose item never committed (a process killed between storage and database); idempotent."""
    return media_storage_sweep_orphans()
