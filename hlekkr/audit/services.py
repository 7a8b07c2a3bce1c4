"""audit_record, the one way to append to the audit chain, and the sequencer that seals what it appended."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.utils import timezone

from hlekkr.audit.chain import GENESIS, jsonable, row_hash
from hlekkr.audit.models import AuditEvent

if TYPE_CHECKING:  # the audit log names actors; accounts' services write to the log
    from django.contrib.auth.models import AnonymousUser

    from hlekkr.accounts.models import User

logger = logging.getLogger(__name__)

# Any constant works; it names the one advisory lock the sequencer holds while it seals (never a writer).
_SEQUENCER_LOCK_KEY = 0x484C4B52  # "HLKR"
SEAL_BATCH = 500


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event: a plain INSERT in the caller's transaction (the outbox), so the event exists exactly
    when the change committed, and no writer waits for another. Its place in the chain (sequence, prev_hash,
    hash) is given after commit by the sequencer, `audit_seal_pending` (docs/audit.md: the guarantee and the
    window)."""
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
    actor_id = getattr(actor, "pk", None) if actor is not None and getattr(actor, "is_authenticated", False) else None
    actor_repr = str(getattr(actor, "username", "") or ("system" if actor is None else actor))[:150]
    event = AuditEvent.objects.create(
        created_at=timezone.now(),
        actor_id=actor_id,
        actor_repr=actor_repr,
        action=action,
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        payload=jsonable(payload or {}),
    )
    if not any(entry[1] is audit_seal_after_commit for entry in connection.run_on_commit):
        transaction.on_commit(audit_seal_after_commit, robust=True)  # once per transaction, however many events
    return event


def _sequencer_lock() -> bool:
    """Only one sequencer at a time. PostgreSQL: a transaction-scoped advisory lock, tried, not waited for
    (a sequencer already running will seal our rows too, or the next drain will). SQLite runs write
    transactions one at a time already (transaction_mode IMMEDIATE)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEQUENCER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def audit_seal_pending(*, limit: int = SEAL_BATCH) -> int | None:
    """The sequencer: give committed, unsealed events (oldest id first) the next sequence numbers and their
    hashes, in one short transaction of its own. Returns how many it sealed, or None when another sequencer
    holds the lock. Idempotent and resumable: a crash leaves rows unsealed, and the next run seals them."""
    with transaction.atomic():
        if not _sequencer_lock():
            return None
        sealed = AuditEvent.objects.filter(sequence__isnull=False)
        head = sealed.order_by("-sequence").values("sequence", "hash").first()
        sequence = int(head["sequence"] or 0) if head else 0
        prev_hash = str(head["hash"]) if head else GENESIS
        pending = list(AuditEvent.objects.filter(sequence__isnull=True).order_by("id")[:limit])
        for event in pending:
            sequence += 1
            event.sequence, event.prev_hash = sequence, prev_hash
            event.hash = row_hash(
                sequence=sequence,
                created_at=event.created_at,
                actor_id=event.actor_id,
                actor_repr=event.actor_repr,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                payload=event.payload,
                prev_hash=prev_hash,
            )
            prev_hash = event.hash
        if pending:
            AuditEvent.objects.bulk_update(pending, ["sequence", "prev_hash", "hash"])
    return len(pending)


def audit_seal_after_commit() -> None:
    """The on-commit drain: one pass, more only while a pass fills a whole batch (a backlog), and none when
    another sequencer holds the lock. A row committed while another sequencer runs, after its read of the
    pending rows, is sealed by the next audited commit or the periodic run (`audit_seal_task`, every 10 s).
    It used to make an extra, empty pass to catch that row: a third of a review claim's time went into the two
    sealing transactions, and on a busy system the next commit comes within milliseconds anyway. Never raises
    into the request."""
    try:
        while audit_seal_pending() == SEAL_BATCH:
            pass
    except Exception:
        logger.exception("audit sequencer failed; the periodic run will seal the pending events")


def audit_admin_write(
    *, actor: User | AnonymousUser, verb: str, target: models.Model, change_message: Any
) -> AuditEvent:
    """One admin write (`verb`: added, changed, deleted), from Django admin's own change message: which fields
    changed and which inline rows were added, changed or deleted, by name. Values are never recorded."""
    return audit_record(
        actor=actor,
        action=f"admin.{verb}",
        target=target,
        payload={"object": str(target)[:200], "changes": change_message if isinstance(change_message, list) else []},
    )
