"""Infrastructure knobs of the analysis app (tuning such as weights lives in ScoringPolicy rows instead).

Each is read from Django settings when set there (tests use the `settings` fixture) and otherwise from the
environment, so no edit to hlekkr/settings.py is needed to configure them.
"""

from __future__ import annotations

from django.conf import settings

from hlekkr.env import env_bool, setting_float, setting_int, setting_str

__all__ = ["setting_float", "setting_int", "setting_str"]  # bedrock_usage reads its knobs through conf


def c2pa_trust_anchors_file() -> str:
    """Path to a PEM bundle (or c2pa settings document) of C2PA trust anchors added to the shipped lists
    (HLEKKR_C2PA_TRUST_ANCHORS_FILE); empty = only the shipped lists."""
    return setting_str("HLEKKR_C2PA_TRUST_ANCHORS_FILE")


def c2pa_shipped_trust_list() -> bool:
    """Whether the shipped C2PA trust lists count (HLEKKR_C2PA_SHIPPED_TRUST_LIST, default true); false makes
    HLEKKR_C2PA_TRUST_ANCHORS_FILE replace them."""
    value = getattr(settings, "HLEKKR_C2PA_SHIPPED_TRUST_LIST", None)
    if value is None:
        return env_bool("HLEKKR_C2PA_SHIPPED_TRUST_LIST", True)
    return bool(value)


def pdq_max_distance() -> int:
    return setting_int("HLEKKR_PDQ_MAX_DISTANCE", 31, minimum=0, maximum=128)


def pdq_min_quality() -> int:
    return setting_int("HLEKKR_PDQ_MIN_QUALITY", 50, minimum=0, maximum=100)


def detector_budget_scale() -> float:
    """Multiplies every detector's time budget (HLEKKR_DETECTOR_BUDGET_SCALE, default 1): raise it on slow
    hardware rather than editing detectors."""
    return setting_float("HLEKKR_DETECTOR_BUDGET_SCALE", 1.0, minimum=0.01)


def analysis_time_limit_seconds() -> int:
    """An analysis running longer than this is considered stuck (the task's hard time limit)."""
    return int(getattr(settings, "HLEKKR_ANALYSIS_TIME_LIMIT", None) or settings.CELERY_TASK_TIME_LIMIT)


def analysis_soft_time_limit_seconds() -> int:
    return int(getattr(settings, "HLEKKR_ANALYSIS_SOFT_TIME_LIMIT", None) or settings.CELERY_TASK_SOFT_TIME_LIMIT)


def requeue_after_seconds() -> int:
    """A queued analysis whose task was last sent this long ago is sent again by the reconciler."""
    return setting_int("HLEKKR_ANALYSIS_REQUEUE_AFTER", 60, minimum=1)


MAX_ATTEMPTS = 3
ARTIFACT_URL_TTL = 900  # longer than the 300 s media detail cache, so a cached body never holds a dead URL
