"""Periodic tasks of the audit app (collected by hlekkr/celery.py)."""

SCHEDULE = {
    "audit-seal": {
        "task": "hlekkr.audit.tasks.audit_seal_task",
        "schedule": 10.0,
        "options": {"queue": "maintenance", "expires": 9},
    },
}
