"""Periodic tasks of the ratelimit app (collected by hlekkr/celery.py)."""

SCHEDULE = {
    "ratelimit-monitor-flush": {
        "task": "ratelimit.tasks.ratelimit_monitor_flush_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 55},
    },
}
