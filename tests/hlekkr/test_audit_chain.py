"""The audit chain links every event to the one before it."""

from __future__ import annotations

import pytest

from hlekkr.audit.chain import GENESIS, row_hash
from hlekkr.audit.models import AuditEvent
from hlekkr.audit.selectors import audit_chain_verify
from hlekkr.audit.services import audit_record, audit_seal_pending

pytestmark = pytest.mark.django_db


def test_events_form_one_linked_chain(client_a):
    first = audit_record(actor=client_a, action="thing.created", target=client_a, payload={"n": 1})
    second = audit_record(actor=None, action="thing.changed", object_type="thing", object_id="7", payload={"n": 2})
    assert first.sequence is None and first.hash is None  # written in the outbox, sealed after commit
    assert audit_seal_pending() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    events = list(AuditEvent.objects.order_by("sequence"))
    assert events[0].prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert first.sequence is not None and second.sequence == first.sequence + 1
    assert first.actor_id == client_a.pk and second.actor_repr == "system"
    assert audit_chain_verify() == (len(events), None)


def test_the_hash_covers_the_canonical_content(client_a):
    event = audit_record(actor=client_a, action="x", payload={"b": 2, "a": [1, "é"]})
    audit_seal_pending()
    event.refresh_from_db()
    assert event.sequence is not None and event.prev_hash is not None
    assert event.hash == row_hash(
        sequence=event.sequence,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_repr=event.actor_repr,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
        prev_hash=event.prev_hash,
    )


def test_the_sequencer_seals_in_commit_order_of_ids_and_is_idempotent(client_a):
    events = [audit_record(actor=None, action="x", object_id=str(n)) for n in range(3)]
    assert audit_seal_pending(limit=2) == 2
    assert audit_seal_pending() == 1
    assert audit_seal_pending() == 0
    assert [e.sequence for e in AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("id")] == [1, 2, 3]
    assert audit_chain_verify() == (3, None)


# Tampering (edits, deletions, reordering), the PostgreSQL trigger and parallel writers: tests/ops/test_audit_verification.py


def test_a_commit_seals_its_events_in_one_pass(client_a, monkeypatch, django_capture_on_commit_callbacks):
    from hlekkr.audit import services

    passes: list[int | None] = []
    real = services.audit_seal_pending

    def counted(**kwargs):
        passes.append(real(**kwargs))
        return passes[-1]

    monkeypatch.setattr(services, "audit_seal_pending", counted)
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(actor=client_a, action="thing.created", target=client_a)
        audit_record(actor=client_a, action="thing.changed", target=client_a)
    assert passes == [2]  # no second, empty pass
    assert not AuditEvent.objects.filter(sequence__isnull=True).exists()


def test_a_backlog_is_drained_in_batches(client_a, monkeypatch):
    from hlekkr.audit import services

    passes: list[int | None] = []
    real = services.audit_seal_pending
    monkeypatch.setattr(services, "SEAL_BATCH", 2)

    def counted(**kwargs):
        passes.append(real(limit=2))
        return passes[-1]

    monkeypatch.setattr(services, "audit_seal_pending", counted)
    for n in range(5):  # left unsealed, as by processes that died after their commits
        audit_record(actor=None, action="thing.backlog", object_id=str(n))
    services.audit_seal_after_commit()
    assert passes == [2, 2, 1]
    assert not AuditEvent.objects.filter(sequence__isnull=True).exists()
