"""Activating scoring policies from several admins at once (PostgreSQL): activations serialise, exactly one
policy ends active, and each audit record names the policy it really replaced."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from analysis.models import ScoringPolicy
from analysis.services import scoring_policy_activate
from hlekkr.audit.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_activations_leave_one_active_policy_and_an_honest_audit_trail(admin_user: Any) -> None:
    # v1 from the data migration, unless an earlier transactional test flushed it
    before = list(ScoringPolicy.objects.filter(is_active=True).values_list("version", flat=True))
    policies = [ScoringPolicy.objects.create(version=10 + n) for n in range(6)]
    barrier = threading.Barrier(len(policies))
    errors: list[BaseException] = []

    def activate(policy: ScoringPolicy) -> None:
        try:
            barrier.wait()
            scoring_policy_activate(policy=policy, actor=admin_user)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(p,)) for p in policies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    active = list(ScoringPolicy.objects.filter(is_active=True).values_list("version", flat=True))
    assert len(active) == 1
    events = list(AuditEvent.objects.filter(action="scoring_policy.activated").order_by("sequence"))
    assert len(events) == len(policies)
    # Replayed in commit order, each activation replaced exactly the policy active before it.
    previous = before
    for event in events:
        assert event.payload["previous"] == previous, [e.payload for e in events]
        previous = [event.payload["version"]]
    current = previous[0]
    assert current == active[0]
