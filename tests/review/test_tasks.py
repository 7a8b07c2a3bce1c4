"""The debounced scheduling of the batch assignment run."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from review import tasks


def test_a_failed_enqueue_does_not_block_the_next_trigger(monkeypatch) -> None:
    cache.delete(tasks.ASSIGNMENT_SCHEDULED_KEY)
    calls: list[dict[str, object]] = []

    def broker_down(**kwargs: object) -> None:
        calls.append(kwargs)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.review_assignment_run_task, "apply_async", broker_down)
    with pytest.raises(ConnectionError):
        tasks.assignment_run_schedule()
    monkeypatch.setattr(tasks.review_assignment_run_task, "apply_async", lambda **kwargs: calls.append(kwargs))
    assert tasks.assignment_run_schedule() is True
    assert tasks.assignment_run_schedule() is False  # debounced while the first is scheduled
    assert len(calls) == 2
    cache.delete(tasks.ASSIGNMENT_SCHEDULED_KEY)
