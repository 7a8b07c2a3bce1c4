"""Periodic review work, collected by hlekkr/celery.py."""

SCHEDULE = {
    "review-leases-expire": {
        "task": "review.tasks.review_leases_expire_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance"},
    },
    # The safety net: moderators coming on shift and anything a missed trigger left unassigned.
    "review-assignment-run": {
        "task": "review.tasks.review_assignment_run_task",
        "schedule": 120.0,
        "options": {"queue": "interactive"},
    },
}
