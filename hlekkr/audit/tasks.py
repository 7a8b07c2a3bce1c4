"""The sequencer's periodic run: the backstop of the on-commit drain (docs/audit.md)."""

from __future__ import annotations

from celery import shared_task

from hlekkr.audit.services import audit_seal_pending


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=50, time_limit=55)
def audit_seal_task() -> int:
    sealed = 0
    while (count := audit_seal_pending()) is not None and count > 0:
        sealed += count
    return sealed
