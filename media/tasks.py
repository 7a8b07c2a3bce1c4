"""Thin Celery tasks of the media app."""

from __future__ import annotations

from celery import shared_task

from hlekkr.exceptions import TransientError
from media.services import multipart_uploads_abort_stale


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
