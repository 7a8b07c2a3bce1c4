from __future__ import annotations

from hlekkr.audit.chain import Break, verify
from hlekkr.audit.models import AuditEvent


def audit_chain_verify() -> tuple[int, Break | None]:
    """Walk the whole chain in sequence order, streaming rows; (rows checked, first break or None)."""
    return verify(AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000))
