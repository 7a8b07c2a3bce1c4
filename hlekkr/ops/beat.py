"""Periodic tasks of the ops app; hlekkr/celery.py merges SCHEDULE into the beat schedule. Run exactly one beat."""

from __future__ import annotations

from typing import Any

from hlekkr.ops.checks import DEFAULT_WORKER_QUEUES

SCHEDULE: dict[str, dict[str, Any]] = {
    # One heartbeat per queue: it lands on whichever worker consumes that queue. Expiring keeps a queue without
    # workers from piling up heartbeats that would look fresh when a worker finally appears.
    **{
        f"ops-heartbeat-{queue}": {
            "task": "ops.heartbeat",
            "schedule": 30.0,
            "args": (queue,),
            "options": {"queue": queue, "expires": 60},
        }
        for queue in DEFAULT_WORKER_QUEUES
    },
    "ops-sample-queue-depth": {
        "task": "ops.sample_queue_depth",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 60},
    },
    "ops-evaluate-alerts": {
        "task": "ops.evaluate_alerts",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 60},
    },
    "ops-purge-records": {
        "task": "ops.purge_records",
        "schedule": 24 * 3600.0,
        "options": {"queue": "maintenance"},
    },
}
