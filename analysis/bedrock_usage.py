"""The Bedrock side of the pipeline: configuration, the hook that hands an analysis to the `bedrock` queue, the
task body that runs the detector and finishes scoring, and cost accounting (docs/bedrock.md).

Flow when models are configured: the local task runs every local detector, saves its timings and, instead of
scoring, enqueues `analysis.bedrock` on the `bedrock` queue; the analysis stays `running`. The Bedrock task runs
the detector (never raises: failures become an abstention), stores its result and the per-call usage, then scores
everything and completes the analysis. Local detectors therefore never wait behind Bedrock calls, and a slow or
failing Bedrock only delays the final score, never blocks it. If the Bedrock message is lost, the reconciler
re-queues the analysis once it outlives its time limit; the re-run keeps the stored local results and enqueues
the Bedrock step again.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from analysis import conf
from analysis.detectors.base import DetectorContext
from analysis.models import Analysis, AnalysisStatus, BedrockCall, DetectorResult
from hlekkr.env import env_int, env_str

logger = logging.getLogger(__name__)

QUEUE = "bedrock"
DETECTOR = "bedrock"


# --- configuration ---------------------------------------------------------------------------------------------
def configured_models() -> list[Any]:
    from analysis.detectors.bedrock import parse_models

    raw = getattr(settings, "HLEKKR_BEDROCK_MODELS", None)  # a list in settings, JSON text in the environment
    return parse_models(raw if raw is not None else env_str("HLEKKR_BEDROCK_MODELS"))


def daily_budget_usd() -> float:
    return conf.setting_float("HLEKKR_BEDROCK_DAILY_BUDGET_USD", 25.0, minimum=0)


def ensemble_size() -> int:
    """How many model answers to collect (0 = every configured model). 1 = first answer wins."""
    return conf.setting_int("HLEKKR_BEDROCK_ENSEMBLE_SIZE", 0, minimum=0)


def make_client() -> Any:
    """A bedrock-runtime client with our own retry policy (botocore's retries off) and bounded timeouts."""
    import boto3
    from botocore.config import Config

    region = getattr(settings, "HLEKKR_BEDROCK_REGION", None) or env_str(
        "HLEKKR_BEDROCK_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1")
    )
    config = Config(
        connect_timeout=5,
        read_timeout=env_int("HLEKKR_BEDROCK_READ_TIMEOUT", 60, minimum=5),
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)


# --- spend -------------------------------------------------------------------------------------------------------
def spent_today_usd(now: datetime | None = None) -> float:
    """Sum of today's (UTC) Bedrock costs."""
    now = now or timezone.now()
    start = datetime.combine(now.date(), dtime.min, tzinfo=now.tzinfo)
    total = BedrockCall.objects.filter(created_at__gte=start).aggregate(total=Sum("cost_usd"))["total"]
    return float(total or 0)


def record_bedrock_usage(analysis: Analysis | None, evidence: dict[str, Any]) -> int:
    """One BedrockCall row per call listed in the detector's evidence; idempotent per (run_id, sequence)."""
    calls = evidence.get("calls") or []
    run_id = evidence.get("run_id") or str(uuid.uuid4())
    rows = [
        BedrockCall(
            analysis=analysis,
            run_id=run_id,
            sequence=index,
            model_id=str(call.get("model_id", ""))[:200],
            outcome=str(call.get("outcome", ""))[:64],
            input_tokens=int(call.get("input_tokens") or 0),
            output_tokens=int(call.get("output_tokens") or 0),
            cost_usd=Decimal(str(call.get("cost_usd") or 0)).quantize(Decimal("0.00000001")),
            latency_ms=int(call.get("latency_ms") or 0),
        )
        for index, call in enumerate(calls)
    ]
    BedrockCall.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- the hook and the task body -------------------------------------------------------------------------------
def awaiting_bedrock(analysis: Analysis) -> bool:
    """True when this analysis should get a Bedrock opinion before it is scored: models are configured, the kind
    is one Bedrock examines, and no Bedrock result is stored yet."""
    from analysis.detectors.bedrock import BedrockDetector

    if analysis.media.kind not in BedrockDetector.kinds:
        return False
    try:
        if not configured_models():
            return False
    except Exception:
        logger.exception("HLEKKR_BEDROCK_MODELS is invalid; analysing without Bedrock")
        return False
    return not DetectorResult.objects.filter(analysis=analysis, detector=DETECTOR).exists()


def enqueue_bedrock(*, analysis_id: Any) -> None:
    """Send the Bedrock step after commit. A failed send (broker down) leaves the analysis `running` with its
    local results stored; the reconciler re-queues it past its time limit and the re-run sends this again. It must
    not raise: outside a transaction on_commit runs at once, and an exception would fail the analysis."""

    def send() -> None:
        from analysis.tasks import analysis_bedrock_task

        try:
            analysis_bedrock_task.apply_async(args=[str(analysis_id)], queue=QUEUE)
        except Exception:
            logger.exception(
                "could not send analysis %s to the %s queue; the reconciler will retry", analysis_id, QUEUE
            )

    transaction.on_commit(send, robust=True)


def analysis_bedrock_run(*, analysis_id: Any, detector: Any = None) -> Analysis | None:
    """Run the Bedrock detector for a running analysis, store its result and usage, then score and complete.

    Idempotent: a stored Bedrock result is not asked for again; a finished analysis is left alone.
    """
    from analysis import services
    from analysis.detectors.bedrock import BedrockDetector
    from analysis.media_input import media_input_for
    from analysis.pipeline import elapsed_ms, run_detector

    analysis = Analysis.objects.select_related("media").filter(pk=analysis_id).first()
    if analysis is None or analysis.status != AnalysisStatus.RUNNING:
        return analysis
    item = analysis.media
    timings: dict[str, Any] = dict(analysis.timings or {})
    if not DetectorResult.objects.filter(analysis=analysis, detector=DETECTOR).exists():
        started = time.perf_counter()
        context = DetectorContext(
            options={"bedrock_spent_today_usd": spent_today_usd(), "bedrock_daily_budget_usd": daily_budget_usd()}
        )
        try:
            with media_input_for(item) as media_input:
                run = run_detector(detector or BedrockDetector(), media_input, context)
        except OSError as exc:
            from hlekkr.exceptions import TransientError

            raise TransientError(f"storage error while copying media for Bedrock: {type(exc).__name__}") from exc
        run.output.evidence.setdefault("run_id", str(uuid.uuid4()))
        with transaction.atomic():
            services._store_result(analysis, item, run)
            record_bedrock_usage(analysis, run.output.evidence)
        timings.setdefault("detectors", {})[DETECTOR] = run.duration_ms
        timings["bedrock_ms"] = elapsed_ms(started)
    if analysis.started_at:
        timings["total_ms"] = max(0, round((timezone.now() - analysis.started_at).total_seconds() * 1000))
    return services.analysis_score_and_complete(analysis=analysis, timings=timings)
