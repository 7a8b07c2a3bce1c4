from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.utils import timezone

from hlekkr.audit.chain import Break, ChainRow, verify
from hlekkr.audit.models import AuditEvent


def audit_chain_verify() -> tuple[int, Break | None]:
    """Walk the sealed chain in sequence order, streaming rows; (rows checked, first break or None)."""
    rows = AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence").iterator(chunk_size=2000)
    return verify(cast(Iterable[ChainRow], rows))  # sealed rows: sequence and hashes are set


def unsealed_bound_seconds() -> int:
    """How long a committed event may wait for its place in the chain before that is a finding (the sequencer
    seals within milliseconds normally, and its periodic run every 10 s)."""
    return int(getattr(settings, "HLEKKR_AUDIT_UNSEALED_BOUND_SECONDS", 120))


def audit_unsealed_overdue() -> tuple[int, int]:
    """(events not yet sealed, of which older than the bound)."""
    pending = AuditEvent.objects.filter(sequence__isnull=True)
    cutoff = timezone.now() - timedelta(seconds=unsealed_bound_seconds())
    return pending.count(), pending.filter(created_at__lt=cutoff).count()
