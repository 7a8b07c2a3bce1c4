"""Worker heartbeats: the beat task and the start-up signal record them per queue."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from hlekkr.ops.models import WorkerHeartbeat
from hlekkr.ops.tasks import _heartbeat_on_start, heartbeat_task

pytestmark = pytest.mark.django_db


def test_the_heartbeat_task_records_its_queue() -> None:
    heartbeat_task.delay("interactive")
    beat = WorkerHeartbeat.objects.get()
    assert beat.queue == "interactive"
    assert timezone.now() - beat.last_seen < timedelta(seconds=5)


def test_a_second_heartbeat_updates_the_row_in_place() -> None:
    heartbeat_task.delay("batch")
    first = WorkerHeartbeat.objects.get().last_seen
    heartbeat_task.delay("batch")
    assert WorkerHeartbeat.objects.count() == 1
    assert WorkerHeartbeat.objects.get().last_seen >= first


def test_a_starting_worker_reports_on_every_queue_it_consumes() -> None:
    consumer = SimpleNamespace(
        hostname="celery@node-1",
        task_consumer=SimpleNamespace(queues=[SimpleNamespace(name="interactive"), SimpleNamespace(name="batch")]),
    )
    _heartbeat_on_start(sender=consumer)
    assert set(WorkerHeartbeat.objects.values_list("hostname", "queue")) == {
        ("celery@node-1", "interactive"),
        ("celery@node-1", "batch"),
    }


def test_a_start_up_heartbeat_that_cannot_read_its_sender_is_ignored() -> None:
    _heartbeat_on_start(sender=object())
    assert WorkerHeartbeat.objects.count() == 0


def test_old_records_are_purged() -> None:
    from hlekkr.ops.models import RequestMinute
    from hlekkr.ops.services import ops_records_purge

    old = timezone.now() - timedelta(days=40)
    RequestMinute.objects.create(minute=old, route="r", method="GET", count=1)
    WorkerHeartbeat.objects.create(hostname="gone", queue="batch", last_seen=old)
    assert ops_records_purge() == {"request_minutes": 1, "queue_samples": 0, "heartbeats": 1}


def test_the_embedded_worker_command_consumes_every_heartbeat_queue(settings: Any) -> None:
    from pathlib import Path

    from hlekkr.ops.checks import DEFAULT_WORKER_QUEUES

    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    worker_line = next(line for line in makefile.splitlines() if "worker -B" in line)
    for queue in DEFAULT_WORKER_QUEUES:
        assert queue in worker_line
