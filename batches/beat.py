"""Periodic tasks of the batches app (collected by hlekkr/celery.py)."""

SCHEDULE = {
    "batches-reconcile": {
        "task": "batches.tasks.reconcile_batches_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance"},
    },
}
