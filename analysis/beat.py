"""Periodic tasks of the analysis app, collected by hlekkr/celery.py."""

SCHEDULE = {
    "analysis-reconcile": {
        "task": "analysis.tasks.reconcile_analyses_task",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 55},
    },
    # The calibration loop (docs/scoring.md, "Learning from verdicts"): a proposal and its shadow evaluation
    # each week, waiting in admin for a person to activate it (or not).
    "analysis-propose-scoring-policy": {
        "task": "analysis.tasks.propose_scoring_policy_task",
        "schedule": 7 * 24 * 3600.0,
        "options": {"queue": "maintenance"},
    },
}
