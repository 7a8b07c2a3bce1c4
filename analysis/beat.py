"""Periodic tasks of the analysis app, collected by hlekkr/celery.py."""

SCHEDULE = {
    "analysis-reconcile": {
        "task": "analysis.tasks.reconcile_analyses_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 55},
    },
}
