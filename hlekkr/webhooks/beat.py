"""Periodic work of the webhooks app (collected by hlekkr/celery.py)."""

SCHEDULE = {
    "webhooks-dispatch-due": {
        "task": "webhooks.dispatch_due",
        "schedule": 15.0,
        "options": {"queue": "webhooks", "expires": 14},
    },
}
