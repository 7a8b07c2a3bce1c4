"""Domain events: in-transaction subscribers share the publisher's fate; after-commit ones run only on commit."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from hlekkr import events
from hlekkr.audit.models import AuditEvent
from hlekkr.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorder():
    calls: list[tuple[str, dict]] = []

    def in_transaction(event, payload):
        calls.append(("db", payload))
        audit_record(actor=None, action="test.subscriber_wrote", payload=payload)

    def after_commit(event, payload):
        calls.append(("after", payload))

    events.subscribe(events.REVIEW_DECIDED, in_transaction, after_commit=False)
    events.subscribe(events.REVIEW_DECIDED, after_commit, after_commit=True)
    yield calls
    events.unsubscribe(events.REVIEW_DECIDED, in_transaction)
    events.unsubscribe(events.REVIEW_DECIDED, after_commit)


def test_in_transaction_subscribers_run_at_once_and_after_commit_ones_on_commit(
    recorder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.publish(events.REVIEW_DECIDED, {"id": "1"})
        assert [kind for kind, _ in recorder] == ["db"]
    assert [kind for kind, _ in recorder] == ["db", "after"]
    assert AuditEvent.objects.filter(action="test.subscriber_wrote").count() == 1


def test_a_rolled_back_publisher_rolls_back_in_transaction_writes_and_never_runs_after_commit(
    recorder, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        events.publish(events.REVIEW_DECIDED, {"id": "2"})
        raise RuntimeError("publisher fails after publishing")
    assert callbacks == []
    assert [kind for kind, _ in recorder] == ["db"]
    assert not AuditEvent.objects.filter(action="test.subscriber_wrote").exists()


def test_a_failing_after_commit_subscriber_does_not_break_the_publisher(django_capture_on_commit_callbacks):
    def broken(event, payload):
        raise ValueError("webhook host down")

    events.subscribe(events.MEDIA_DELETED, broken, after_commit=True)
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            events.publish(events.MEDIA_DELETED, {"media_id": str(uuid.uuid4()), "owner_id": 0})
    finally:
        events.unsubscribe(events.MEDIA_DELETED, broken)


def test_unknown_events_are_refused():
    with pytest.raises(ValueError):
        events.publish("media.exploded", {})
    with pytest.raises(ValueError):
        events.subscribe("media.exploded", lambda e, p: None, after_commit=False)


def test_payloads_are_copied_so_subscribers_cannot_change_the_publishers_dict(recorder):
    payload = {"id": "3"}
    events.publish(events.REVIEW_DECIDED, payload)
    recorder[0][1]["id"] = "changed"
    assert payload == {"id": "3"}
