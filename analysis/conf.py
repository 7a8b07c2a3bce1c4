"""Infrastructure knobs of the analysis app, read from Django settings only (hlekkr/settings.py parses the
environment through the bounded readers of hlekkr/env.py). Tuning such as weights lives in ScoringPolicy rows.

`check()` runs at start-up (AnalysisConfig.ready) and refuses a configuration the pipeline could not use, so a
bad value stops the deploy instead of failing every analysis.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from analysis import trust_lists
from analysis.detectors import registry
from analysis.detectors.base import DetectorConfig
from analysis.detectors.bedrock import ModelSpec, parse_models

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
ARTIFACT_URL_TTL = 900  # longer than the 300 s media detail cache, so a cached body never holds a dead URL


def c2pa_trust_anchors_file() -> str:
    """A PEM bundle (or c2pa settings document) of C2PA trust anchors added to the shipped lists; empty: none."""
    return str(settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE)


def c2pa_shipped_trust_list() -> bool:
    """Whether the shipped C2PA trust lists count (default true); false makes the file replace them."""
    return bool(settings.HLEKKR_C2PA_SHIPPED_TRUST_LIST)


def c2pa_trust_anchors_pem() -> str | None:
    """The C2PA trust anchors: the shipped lists (analysis/trust_lists.py) unless HLEKKR_C2PA_SHIPPED_TRUST_LIST
    is false, plus the bundle in HLEKKR_C2PA_TRUST_ANCHORS_FILE. None when neither applies."""
    path = c2pa_trust_anchors_file()
    text: str | None = None
    if path:
        try:
            text = Path(path).read_text()
        except OSError:
            # Loud in the log (and in doctor), but not fatal per analysis: provenance then judges with the shipped
            # lists alone (or none), which is the honest answer without the operator's anchors.
            logger.error("HLEKKR_C2PA_TRUST_ANCHORS_FILE %s cannot be read", path)
    return trust_lists.trust_anchors_text(text, use_shipped=c2pa_shipped_trust_list())


def detector_config() -> DetectorConfig:
    """What the local detectors are constructed with."""
    return DetectorConfig(
        pdq_max_distance=settings.HLEKKR_PDQ_MAX_DISTANCE,
        pdq_min_quality=settings.HLEKKR_PDQ_MIN_QUALITY,
        c2pa_trust_anchors_pem=c2pa_trust_anchors_pem(),
    )


def optional_detectors() -> frozenset[str]:
    """Detectors the pipeline may run without when they cannot be loaded; every other one is required."""
    return frozenset(settings.HLEKKR_OPTIONAL_DETECTORS)


def detector_budget_scale() -> float:
    """Multiplies every detector's time budget (HLEKKR_DETECTOR_BUDGET_SCALE, default 1): raise it on slow
    hardware rather than editing detectors."""
    return float(settings.HLEKKR_DETECTOR_BUDGET_SCALE)


def analysis_time_limit_seconds() -> int:
    """The analysis tasks' hard time limit (Celery recycles a worker whose task outlives it)."""
    return int(settings.CELERY_TASK_TIME_LIMIT)


def analysis_soft_time_limit_seconds() -> int:
    return int(settings.CELERY_TASK_SOFT_TIME_LIMIT)


def detector_threads() -> int:
    """How many detectors of one analysis run at once (HLEKKR_DETECTOR_THREADS, default 2; analysis/pipeline.py)."""
    return int(settings.HLEKKR_DETECTOR_THREADS)


def lease_seconds() -> int:
    """How long a running analysis's claim lives without renewal (the worker renews it every third of this)."""
    return int(settings.HLEKKR_ANALYSIS_LEASE_SECONDS)


def requeue_after_seconds() -> int:
    """A queued analysis (or waiting step) whose task was last sent this long ago is sent again."""
    return int(settings.HLEKKR_ANALYSIS_REQUEUE_AFTER)


# --- Bedrock (docs/bedrock.md) ----------------------------------------------------------------------------------
def bedrock_models() -> list[ModelSpec]:
    """HLEKKR_BEDROCK_MODELS: JSON text (from the environment) or a list (in a settings module)."""
    raw: Any = settings.HLEKKR_BEDROCK_MODELS
    return parse_models(raw if isinstance(raw, list) else (raw or None))


def bedrock_daily_budget_usd() -> float:
    return float(settings.HLEKKR_BEDROCK_DAILY_BUDGET_USD)


def bedrock_detector_options() -> dict[str, Any]:
    """Keyword arguments of BedrockDetector (its configuration)."""
    return {
        "models": bedrock_models(),
        "region": settings.HLEKKR_BEDROCK_REGION,
        "read_timeout_s": int(settings.HLEKKR_BEDROCK_READ_TIMEOUT),
        "daily_budget_usd": bedrock_daily_budget_usd(),
        "ensemble_size": int(settings.HLEKKR_BEDROCK_ENSEMBLE_SIZE),
    }


# --- the start-up check ------------------------------------------------------------------------------------------
def check() -> None:
    """Raise ImproperlyConfigured for values that bounds alone cannot judge (run at AnalysisConfig.ready)."""
    bedrock_models()  # parse_models raises ImproperlyConfigured with the offending entry
    unknown = optional_detectors() - {spec.name for spec in registry.REGISTERED}
    if unknown:
        raise ImproperlyConfigured(f"HLEKKR_OPTIONAL_DETECTORS names unknown detectors: {sorted(unknown)}")
    if lease_seconds() * 2 > analysis_soft_time_limit_seconds():
        raise ImproperlyConfigured("HLEKKR_ANALYSIS_LEASE_SECONDS must be at most half of HLEKKR_TASK_SOFT_TIME_LIMIT")
