"""Periodic tasks of the analysis app, collected by hlekkr/celery.py."""

# Often enough that an analysis whose worker died (its 30 s lease lapsed) is re-queued within 15 s more; the
# reconciler's queries are indexed and touch only running or stale queued rows.
RECONCILE_EVERY_S = 15.0

SCHEDULE = {
    "analysis-reconcile": {
        "task": "analysis.tasks.reconcile_analyses_task",
        "schedule": RECONCILE_EVERY_S,
        "options": {"queue": "maintenance", "expires": RECONCILE_EVERY_S - 1},
    },
    # The calibration loop (docs/scoring.md, "Learning from verdicts"): a proposal and its shadow evaluation
    # each week, waiting in admin for a person to activate it (or not).
    "analysis-propose-scoring-policy": {
        "task": "analysis.tasks.propose_scoring_policy_task",
        "schedule": 7 * 24 * 3600.0,
        "options": {"queue": "maintenance"},
    },
}
