"""audit_record: the one way to append to the audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.utils import timezone

from hlekkr.audit.chain import GENESIS, jsonable, row_hash
from hlekkr.audit.models import AuditEvent

if TYPE_CHECKING:  # the audit log names actors; accounts' services write to the log
    from django.contrib.auth.models import AnonymousUser

    from hlekkr.accounts.models import User

# Any constant works; it names the one advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK_KEY = 0x484C4B52  # "HLKR"


def _lock_chain_head() -> None:
    """Serialise appends so concurrent writers cannot fork the chain.

    PostgreSQL: a transaction-scoped advisory lock, released at commit. SQLite: the database runs write
    transactions one at a time already (transaction_mode IMMEDIATE in settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the service's transaction so the event commits with the change."""
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
    actor_id = getattr(actor, "pk", None) if actor is not None and getattr(actor, "is_authenticated", False) else None
    actor_repr = str(getattr(actor, "username", "") or ("system" if actor is None else actor))[:150]
    clean_payload = jsonable(payload or {})
    with transaction.atomic():
        _lock_chain_head()
        last = AuditEvent.objects.order_by("-sequence").values("sequence", "hash").first()
        sequence = (last["sequence"] + 1) if last else 1
        prev_hash = last["hash"] if last else GENESIS
        created_at = timezone.now()
        fields = {
            "sequence": sequence,
            "created_at": created_at,
            "actor_id": actor_id,
            "actor_repr": actor_repr,
            "action": action,
            "object_type": object_type[:64],
            "object_id": str(object_id)[:64],
            "payload": clean_payload,
            "prev_hash": prev_hash,
        }
        return AuditEvent.objects.create(hash=row_hash(**fields), **fields)


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
