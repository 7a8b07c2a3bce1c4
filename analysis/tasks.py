"""Thin Celery tasks: ids in, services do the work (see analysis/services.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from analysis import conf, services
from analysis.proposals import scoring_policy_propose
from hlekkr.exceptions import TransientError, ValidationFailed

logger = logging.getLogger(__name__)

# Every step of an analysis shares one retry policy and the time limits.
_ANALYSIS_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (TransientError,),
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": conf.MAX_ATTEMPTS,
    "soft_time_limit": conf.analysis_soft_time_limit_seconds(),
    "time_limit": conf.analysis_time_limit_seconds(),
}


@shared_task(**_ANALYSIS_TASK_OPTIONS)
def analyze_media_task(self: Any, analysis_id: str) -> None:
    """Run one analysis. Safe to deliver twice: the claim lets only one delivery run it.

    A delivery that finds the claim held looks again once its lease would have lapsed. That is how a worker killed
    mid-analysis (Celery redelivers its message at once) is taken over without waiting for the reconciler; if the
    holder is alive, the retry finds it finished, or still renewing, and looks again later.
    """
    if services.analysis_run(analysis_id=analysis_id) is None:
        wait = services.analysis_claim_wait_seconds(analysis_id=analysis_id)
        if wait is not None:
            raise self.retry(countdown=wait + 1, max_retries=None)


@shared_task(name="analysis.step", **_ANALYSIS_TASK_OPTIONS)
def analysis_step_task(self: Any, analysis_id: str, step: str) -> None:
    """A step handed off to its own queue (Bedrock), then the rest of the pipeline. The step's claim lets only
    one delivery run it."""
    services.analysis_step_run(analysis_id=analysis_id, step_name=step)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def reconcile_analyses_task() -> dict[str, int]:
    """Every few seconds: take over analyses whose worker died, re-send work whose message may be lost."""
    return services.analysis_reconcile()


@shared_task(bind=True, acks_late=True, soft_time_limit=600, time_limit=660)
def propose_scoring_policy_task(self: Any) -> int | None:
    """Weekly: propose a scoring policy from the week's verdicts and shadow-evaluate it (never activates it).
    Too few labels is a normal week, logged, not an error."""
    try:
        policy, _ = scoring_policy_propose()
    except ValidationFailed as error:
        logger.info("no scoring policy proposed: %s", error.message)
        return None
    return policy.version
