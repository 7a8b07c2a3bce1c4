"""Periodic tasks of the media app (collected by hlekkr/celery.py)."""

SCHEDULE = {
    "media-abort-stale-uploads": {
        "task": "media.tasks.abort_stale_uploads_task",
        "schedule": 3600.0,  # hourly: an upload is aborted at most an hour after it turns 24 h old
        "options": {"queue": "maintenance"},
    },
    "media-reconcile-fetches": {
        "task": "media.tasks.reconcile_fetches_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance"},
    },
    "media-sweep-orphans": {
        "task": "media.tasks.sweep_orphans_task",
        "schedule": 900.0,  # every 15 min: an orphan goes at most 15 min after its 1 h grace period
        "options": {"queue": "maintenance", "expires": 840},
    },
}
