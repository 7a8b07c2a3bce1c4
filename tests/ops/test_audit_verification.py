"""verify_audit catches every kind of tampering; PostgreSQL refuses it outright and keeps parallel writers linear."""

from __future__ import annotations

import threading
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from hlekkr.audit.models import AuditEvent
from hlekkr.audit.selectors import audit_chain_verify
from hlekkr.audit.services import audit_record, audit_seal_pending
from tests.ops.conftest import audit_tampering

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain() -> list[AuditEvent]:
    events = [audit_record(actor=None, action="test.event", object_id=str(n), payload={"n": n}) for n in range(1, 6)]
    audit_seal_pending()  # what the on-commit drain does once the test's transaction would commit
    return events


def verify_audit() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def test_an_untouched_chain_verifies(chain: list[AuditEvent]) -> None:
    assert "5 rows verified" in verify_audit()


def test_an_edited_payload_is_caught(chain: list[AuditEvent]) -> None:
    with audit_tampering():
        AuditEvent.objects.filter(sequence=3).update(payload={"n": 333})
    with pytest.raises(CommandError, match=r"row #3: hash does not match"):
        verify_audit()


def test_an_edit_that_recomputes_the_rows_own_hash_is_caught_at_the_next_row(chain: list[AuditEvent]) -> None:
    from hlekkr.audit.chain import row_hash

    row = AuditEvent.objects.get(sequence=3)
    fields = {
        f: getattr(row, f)
        for f in ("sequence", "created_at", "actor_id", "actor_repr", "action", "object_type", "object_id")
    }
    assert row.prev_hash is not None
    forged = row_hash(**fields, payload={"n": 333}, prev_hash=row.prev_hash)
    with audit_tampering():
        AuditEvent.objects.filter(pk=row.pk).update(payload={"n": 333}, hash=forged)
    checked, broken = audit_chain_verify()
    assert broken is not None and broken.sequence == 4 and "prev_hash" in broken.problem
    assert checked == 3


def test_a_deleted_row_is_caught(chain: list[AuditEvent]) -> None:
    with audit_tampering():
        AuditEvent.objects.filter(sequence=2).delete()
    with pytest.raises(CommandError, match=r"row #3: sequence jumps"):
        verify_audit()


def test_a_deleted_last_row_is_not_detectable_without_an_anchor_but_the_rest_verifies(
    chain: list[AuditEvent],
) -> None:
    # Truncating the tail leaves a valid shorter chain; documented in docs/operations.md (compare row counts
    # with the last known sequence, e.g. from the metrics or a backup).
    with audit_tampering():
        AuditEvent.objects.filter(sequence=5).delete()
    assert audit_chain_verify() == (4, None)


def test_reordered_rows_are_caught(chain: list[AuditEvent]) -> None:
    two, four = AuditEvent.objects.get(sequence=2), AuditEvent.objects.get(sequence=4)
    with audit_tampering(), transaction.atomic():
        # Swap the contents of rows 2 and 4 but keep their sequence numbers: the order of events changes.
        AuditEvent.objects.filter(pk=two.pk).update(sequence=-2)
        AuditEvent.objects.filter(pk=four.pk).update(sequence=2)
        AuditEvent.objects.filter(pk=two.pk).update(sequence=4)
    checked, broken = audit_chain_verify()
    assert broken is not None and broken.sequence == 2
    assert checked == 1


def test_a_fully_reinserted_row_is_caught(chain: list[AuditEvent]) -> None:
    row = AuditEvent.objects.get(sequence=3)
    with audit_tampering():
        AuditEvent.objects.filter(pk=row.pk).delete()
        row.pk = None
        row.action = "test.rewritten"
        row.save()
    with pytest.raises(CommandError, match=r"row #3"):
        verify_audit()


@pytest.mark.postgres
def test_postgres_refuses_update_of_audit_rows(chain: list[AuditEvent]) -> None:
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).update(payload={"tampered": True})
    assert AuditEvent.objects.get(sequence=2).payload == {"n": 2}


@pytest.mark.postgres
def test_postgres_refuses_delete_of_audit_rows(chain: list[AuditEvent]) -> None:
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).delete()
    assert AuditEvent.objects.count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_writers_on_postgres_keep_the_chain_linear(require_postgres: Any) -> None:
    writers, per_writer = 6, 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                audit_record(actor=None, action="test.parallel", object_id=f"{index}-{n}", payload={"w": index})
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert connection.vendor == "postgresql"
    audit_seal_pending()  # the periodic run: a row committed between a drain's last pass and its commit
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, writers * per_writer + 1))
    assert audit_chain_verify() == (writers * per_writer, None)


# --- the outbox: written with the change, sealed after commit ------------------------------------------------
def test_events_wait_unsealed_within_the_bound_and_are_reported_beyond_it(settings: Any) -> None:
    audit_record(actor=None, action="test.pending")
    assert "awaiting the sequencer" in verify_audit()
    settings.HLEKKR_AUDIT_UNSEALED_BOUND_SECONDS = 0
    with pytest.raises(CommandError, match="not sealed"):
        verify_audit()
    audit_seal_pending()
    assert "1 rows verified" in verify_audit()


def test_an_event_of_a_rolled_back_change_never_enters_the_chain() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.rolled_back")
        raise RuntimeError("the business change failed")
    audit_seal_pending()
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()


@pytest.mark.postgres
def test_postgres_refuses_editing_an_unsealed_row_and_resealing_a_sealed_one() -> None:
    event = audit_record(actor=None, action="test.outbox", payload={"n": 1})
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(payload={"n": 2})
    audit_seal_pending()
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(sequence=99)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_open_audited_transaction_does_not_hold_up_another_writer(require_postgres: Any) -> None:
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                audit_record(actor=None, action="test.slow")
                inside.set()
                release.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inside.wait(10)
    started = time.monotonic()
    with transaction.atomic():
        audit_record(actor=None, action="test.fast")  # used to queue behind the slow writer's chain lock
    waited = time.monotonic() - started
    release.set()
    thread.join()
    assert errors == [] and waited < 2
    audit_seal_pending()
    assert audit_chain_verify() == (2, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sequencers_never_fork_the_chain(require_postgres: Any) -> None:
    for n in range(200):
        AuditEvent.objects.create(created_at=timezone.now(), action="test.bulk", object_id=str(n), payload={})
    barrier = threading.Barrier(4)

    def seal() -> None:
        try:
            barrier.wait()
            while audit_seal_pending(limit=20) != 0:
                pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=seal) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit_seal_pending()
    assert audit_chain_verify() == (200, None)
