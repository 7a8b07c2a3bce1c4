"""Every write of the analysis app: the Analysis lifecycle, results, reconciliation and scoring policies.

Lifecycle (docs/analysis.md):

    queued --claim--> running --complete--> completed
       ^                 |  \\--fail-------> failed
       +--release/stuck--+

The database row is the source of truth. A task only carries the analysis id; `analysis_claim` flips
queued -> running with a conditional UPDATE (or re-claims a run that outlived its time limit), so two deliveries
of the same message run the pipeline at most once at a time, and results are upserted per (analysis, detector).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from datetime import timedelta
from enum import Enum
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from analysis import conf, scoring
from analysis.detectors import registry
from analysis.detectors.base import AbstainCode
from analysis.models import (
    Analysis,
    AnalysisQueue,
    AnalysisStatus,
    DetectorResult,
    DetectorStatus,
    ScoringPolicy,
)
from analysis.pipeline import DetectorRun, elapsed_ms, run_detectors
from hlekkr import events
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import Conflict, NotFound, TransientError
from media.models import MediaItem, MediaStatus

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
STUCK_REASON = f"stuck: exceeded {conf.MAX_ATTEMPTS} attempts"
MEDIA_GONE_REASON = "media unavailable: the item was deleted during analysis"


class AnalysisFailed(Exception):
    """An unrecoverable problem with this analysis (not with the infrastructure): fail it with `reason`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- media outcome (media owns the denormalised fields; we call its service) -------------------------------
def _record_media_outcome(
    analysis: Analysis, *, analysis_status: str, trust_score: int | None = None, verdict: str = ""
) -> None:
    """Tell the media app about the latest outcome. While a re-analysis is queued, running or after it failed,
    the item keeps the previous run's score and verdict so list filters do not lose it meanwhile."""
    from media.services import media_item_record_outcome

    media_item_record_outcome(
        media_id=analysis.media_id,
        analysis_status=analysis_status,
        trust_score=trust_score,
        verdict=verdict,
        keep_scores=analysis_status != AnalysisStatus.COMPLETED,
    )


# --- creation and enqueueing ---------------------------------------------------------------------------------
def analysis_create(
    *, media: MediaItem, queue: str = AnalysisQueue.INTERACTIVE, requested_by: Any | None = None
) -> Analysis:
    """Queue a new run for `media` (run_number = previous + 1). Conflict if one is already queued or running.

    The media row is locked so concurrent requests cannot both pass the in-progress check or pick the same
    run number (the unique constraint would catch the latter anyway). Call `analysis_enqueue` afterwards.
    """
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().get(pk=media.pk)
        if locked.status != MediaStatus.STORED:
            raise Conflict("Only stored media can be analysed.", code="media_not_stored")
        current = Analysis.objects.filter(media=locked, status__in=ACTIVE_STATUSES).first()
        if current is not None:
            raise Conflict(
                "An analysis of this media is already queued or running.",
                code="analysis_in_progress",
                details={"analysis_id": str(current.pk), "status": current.status},
            )
        last = Analysis.objects.filter(media=locked).aggregate(n=Max("run_number"))["n"] or 0
        analysis = Analysis.objects.create(
            media=locked,
            run_number=last + 1,
            queue=queue,
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
        )
        audit_record(
            actor=requested_by,
            action="analysis.queued",
            target=analysis,
            payload={"media_id": str(locked.pk), "run_number": analysis.run_number, "queue": queue},
        )
        _record_media_outcome(analysis, analysis_status=AnalysisStatus.QUEUED)
    return analysis


def analysis_create_for_stored_media(*, media_id: str, queue: str = AnalysisQueue.INTERACTIVE) -> Analysis | None:
    """The `media.stored` subscriber (inside the media transaction): exactly one first analysis per item."""
    media = MediaItem.objects.filter(pk=media_id).first()
    if media is None:
        logger.warning("media.stored for unknown media %s", media_id)
        return None
    existing = Analysis.objects.filter(media=media).order_by("run_number").first()
    if existing is not None:  # the event was published twice: the first analysis stands
        return existing
    return analysis_create(media=media, queue=queue)


def analysis_enqueue(*, analysis_id: Any, only_if_unsent: bool = False) -> bool:
    """Send the task after the surrounding transaction commits, on the analysis's own queue.

    Records when and how often it was sent (a conditional UPDATE, so with `only_if_unsent` a duplicate event
    cannot send twice); if the send fails (broker down) the row stays queued and the reconciler sends it again.
    """
    pending = Analysis.objects.filter(pk=analysis_id, status=AnalysisStatus.QUEUED)
    if only_if_unsent:
        pending = pending.filter(enqueued_at__isnull=True)
    if not pending.update(enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1):
        return False
    queue = Analysis.objects.filter(pk=analysis_id).values_list("queue", flat=True).first()

    def send() -> None:
        from analysis.tasks import analyze_media_task

        try:
            analyze_media_task.apply_async(args=[str(analysis_id)], queue=queue)
        except Exception:
            logger.exception(
                "could not send analysis %s to the %s queue; the reconciler will retry", analysis_id, queue
            )

    transaction.on_commit(send, robust=True)
    return True


def analysis_enqueue_pending_for_media(*, media_id: Any) -> int:
    """The after-commit `media.stored` subscriber: send the item's queued analyses that were never sent."""
    ids = list(Analysis.objects.filter(media_id=media_id, status=AnalysisStatus.QUEUED).values_list("pk", flat=True))
    return sum(analysis_enqueue(analysis_id=analysis_id, only_if_unsent=True) for analysis_id in ids)


def analysis_request_rerun(*, media: MediaItem, user: Any) -> Analysis:
    """Re-analysis asked for through the API: a new run on the batch queue (new uploads go first)."""
    analysis = analysis_create(media=media, queue=AnalysisQueue.BATCH, requested_by=user)
    analysis_enqueue(analysis_id=analysis.pk)
    return analysis


# --- running -------------------------------------------------------------------------------------------------
def analysis_claim(*, analysis_id: Any) -> Analysis | None:
    """queued -> running (or re-claim a running one past its time limit), attempts + 1. None: nothing to do.

    A claim that finds the attempts used up fails the analysis as stuck instead.
    """
    now = timezone.now()
    expired = now - timedelta(seconds=conf.analysis_time_limit_seconds())
    claimable = Q(status=AnalysisStatus.QUEUED) | Q(status=AnalysisStatus.RUNNING, started_at__lt=expired)
    with transaction.atomic():
        updated = Analysis.objects.filter(claimable, pk=analysis_id, attempts__lt=conf.MAX_ATTEMPTS).update(
            status=AnalysisStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, failure_reason=""
        )
        if updated:
            analysis = Analysis.objects.select_related("media").get(pk=analysis_id)
            audit_record(actor=None, action="analysis.running", target=analysis, payload={"attempt": analysis.attempts})
            _record_media_outcome(analysis, analysis_status=AnalysisStatus.RUNNING)
            return analysis
    state = Analysis.objects.filter(pk=analysis_id).values("status", "attempts", "started_at").first()
    if state is None:
        return None  # deleted with its media: nothing to do
    if state["attempts"] >= conf.MAX_ATTEMPTS and (
        state["status"] == AnalysisStatus.QUEUED
        or (state["status"] == AnalysisStatus.RUNNING and state["started_at"] and state["started_at"] < expired)
    ):
        analysis_fail(analysis_id=analysis_id, reason=STUCK_REASON)
    return None


def analysis_run(*, analysis_id: Any) -> Analysis | None:
    """Claim and run one analysis end to end; returns it completed or failed, or None if it was not claimable.

    Detector exceptions become `error` results; media that cannot be analysed becomes a failed analysis with a
    reason; storage hiccups release the claim and raise TransientError so the task retries with backoff.
    """
    analysis = analysis_claim(analysis_id=analysis_id)
    if analysis is None:
        return None
    try:
        return _run_claimed(analysis)
    except AnalysisFailed as exc:
        return analysis_fail(analysis_id=analysis.pk, reason=exc.reason)
    except TransientError as exc:
        analysis_release(analysis_id=analysis.pk, reason=exc.message)
        raise
    except Exception as exc:
        # Celery's SoftTimeLimitExceeded is an Exception too: releasing lets the retry or reconciler pick it up.
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            analysis_release(analysis_id=analysis.pk, reason="soft time limit exceeded")
            raise
        logger.exception("analysis %s failed", analysis.pk)
        return analysis_fail(analysis_id=analysis.pk, reason=f"pipeline error: {type(exc).__name__}")


def _run_claimed(analysis: Analysis) -> Analysis:
    item = analysis.media
    if item.status != MediaStatus.STORED or not item.storage_key:
        raise AnalysisFailed("media unavailable: the item is not stored (deleted or rejected)")
    started = time.perf_counter()
    try:
        exists = default_storage.exists(item.storage_key)
    except Exception as exc:
        raise TransientError(f"storage unavailable: {type(exc).__name__}") from exc
    if not exists:
        raise AnalysisFailed("media missing: the stored file is gone")

    from analysis.media_input import media_input_for

    # Resume: results already stored by an earlier attempt of this analysis are kept, except errors and
    # timeouts, which get another chance.
    kept = {
        (name, version)
        for name, version, status, reasons in analysis.detector_results.values_list(
            "detector", "detector_version", "status", "reasons"
        )
        if status != DetectorStatus.ERROR and not _is_timeout(reasons)
    }
    detectors = registry.detectors()
    skip = {d.name for d in detectors if (d.name, d.version) in kept}
    context = registry.build_context()
    timings: dict[str, Any] = dict(analysis.timings or {})
    detector_ms: dict[str, int] = dict(timings.get("detectors", {}))
    try:
        with media_input_for(item) as media_input:
            download_ms = elapsed_ms(started)
            for run in run_detectors(
                detectors, media_input, context, budget_scale=conf.detector_budget_scale(), skip=skip
            ):
                _store_result(analysis, item, run)
                detector_ms[run.name] = run.duration_ms
    except FileNotFoundError as exc:
        raise AnalysisFailed("media missing: the stored file is gone") from exc
    except OSError as exc:
        raise TransientError(f"storage error while copying media: {type(exc).__name__}") from exc

    timings.update({"download_ms": download_ms, "detectors": detector_ms, "total_ms": elapsed_ms(started)})

    # Bedrock hook (docs/bedrock.md): when models are configured, the Bedrock step runs on its own queue and
    # scores the analysis when it is done; local detectors never wait behind it.
    from analysis import bedrock_usage

    if bedrock_usage.awaiting_bedrock(analysis):
        Analysis.objects.filter(pk=analysis.pk).update(timings=timings)
        bedrock_usage.enqueue_bedrock(analysis_id=analysis.pk)
        return analysis
    return analysis_score_and_complete(analysis=analysis, timings=timings)


def analysis_score_and_complete(*, analysis: Analysis, timings: dict[str, Any]) -> Analysis:
    """Score every stored detector result with the active policy and complete the (running) analysis."""
    scoring_started = time.perf_counter()
    policy_row = ScoringPolicy.objects.filter(is_active=True).first()
    policy = scoring.Policy.from_obj(policy_row) if policy_row else scoring.DEFAULT_POLICY
    if policy_row is None:
        logger.warning("no active scoring policy; scoring analysis %s with the built-in defaults", analysis.pk)
    results = list(analysis.detector_results.all())
    outcome = scoring.score([_evidence(r) for r in results], policy)
    timings["scoring_ms"] = elapsed_ms(scoring_started)
    return analysis_complete(
        analysis_id=analysis.pk, outcome=outcome, policy=policy_row, timings=timings, results=results
    )


def _is_timeout(reasons: Any) -> bool:
    return bool(reasons) and isinstance(reasons, list) and reasons[0].get("code") == str(AbstainCode.TIMEOUT)


def _evidence(row: DetectorResult) -> scoring.DetectorEvidence:
    return scoring.DetectorEvidence(
        detector=row.detector,
        status=row.status,
        score=row.score if row.status == DetectorStatus.OK else None,
        reasons=row.reasons or [],
        decisive=row.decisive or [],
    )


_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def _store_result(analysis: Analysis, item: MediaItem, run: DetectorRun) -> DetectorResult:
    """Upsert the detector's row (idempotent on (analysis, detector)) and store its artifacts."""
    from media.storage import artifact_save

    output = run.output
    artifacts = []
    for artifact in output.artifacts:
        # Run number in the name keeps earlier analyses' artifacts intact when the item is re-analysed.
        name = _UNSAFE.sub("-", f"r{analysis.run_number}-{run.name}-{artifact.name}".lower())[:80]
        try:
            key = artifact_save(item, name, artifact.data)
        except ValueError:
            logger.warning("artifact %r of %s has an unusable name; skipped", artifact.name, run.name)
            continue
        artifacts.append({"name": artifact.name, "content_type": artifact.content_type, "storage_key": key})
    row, _created = DetectorResult.objects.update_or_create(
        analysis=analysis,
        detector=run.name,
        defaults={
            "detector_version": str(run.version)[:16],
            "status": output.status,
            "score": output.probability if output.status == "ok" else None,
            "reasons": jsonable([r.as_dict() for r in output.reasons]),
            "evidence": jsonable(output.evidence),
            "decisive": [str(d) for d in output.decisive],
            "artifacts": artifacts,
            "duration_ms": run.duration_ms,
        },
    )
    return row


def analysis_complete(
    *,
    analysis_id: Any,
    outcome: scoring.ScoreResult,
    policy: ScoringPolicy | None,
    timings: dict[str, Any],
    results: list[DetectorResult],
) -> Analysis:
    """running -> completed with the score; updates the media outcome and publishes `analysis.completed`."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().select_related("media").get(pk=analysis_id)
        if analysis.status != AnalysisStatus.RUNNING:
            return analysis  # finished or failed elsewhere meanwhile (reconciler): keep that outcome
        if analysis.media.status != MediaStatus.STORED:
            # Deleted while the detectors ran: completing would publish a verdict (review item, webhook) for an
            # item that no longer exists, and the artifacts stored since the deletion would be orphaned.
            _remove_media_objects_after_commit(analysis.media)
            return analysis_fail(analysis_id=analysis_id, reason=MEDIA_GONE_REASON) or analysis
        analysis.status = AnalysisStatus.COMPLETED
        analysis.finished_at = timezone.now()
        analysis.manipulation_probability = outcome.manipulation_probability
        analysis.trust_score = outcome.trust_score
        analysis.confidence = outcome.confidence
        analysis.verdict = outcome.verdict
        analysis.scoring_policy = policy
        analysis.breakdown = jsonable(outcome.breakdown)
        analysis.timings = timings
        analysis.save()
        audit_record(
            actor=None,
            action="analysis.completed",
            target=analysis,
            payload={
                "trust_score": analysis.trust_score,
                "verdict": analysis.verdict,
                "policy_version": policy.version if policy else None,
            },
        )
        _record_media_outcome(
            analysis,
            analysis_status=AnalysisStatus.COMPLETED,
            trust_score=analysis.trust_score,
            verdict=analysis.verdict,
        )
        events.publish(events.ANALYSIS_COMPLETED, completed_payload(analysis, results))
    return analysis


def _remove_media_objects_after_commit(item: MediaItem) -> None:
    from media.storage import delete_prefix

    def remove() -> None:
        try:
            delete_prefix(item)
        except Exception:  # cleanup must not hide the outcome; the objects are only orphans
            logger.exception("could not remove the stored objects of deleted media %s", item.pk)

    transaction.on_commit(remove, robust=True)


def completed_payload(analysis: Analysis, results: list[DetectorResult]) -> dict[str, Any]:
    """The `analysis.completed` event (and webhook) body."""
    media = analysis.media
    faces = 0
    for row in results:
        if row.status == DetectorStatus.OK and isinstance(row.evidence, dict):
            count = row.evidence.get("face_count", row.evidence.get("max_face_count"))
            if isinstance(count, int):
                faces = max(faces, count)
    decisive = sorted({str(code) for row in results for code in (row.decisive or [])})
    return {
        "analysis_id": str(analysis.pk),
        "media_id": str(media.pk),
        "owner_id": media.owner_id,
        "kind": media.kind,
        "trust_score": analysis.trust_score,
        "verdict": analysis.verdict,
        "manipulation_probability": analysis.manipulation_probability,
        "confidence": analysis.confidence,
        "decisive": decisive,
        "detector_scores": {
            r.detector: r.score for r in results if r.status == DetectorStatus.OK and r.score is not None
        },
        "evidence_balance": (analysis.breakdown or {}).get("evidence_balance"),
        "faces": faces,
        "review_requested": bool(media.review_requested),
        "priority": media.priority,
        "run_number": analysis.run_number,
        "scoring_policy_version": analysis.scoring_policy.version if analysis.scoring_policy else None,
    }


def analysis_fail(*, analysis_id: Any, reason: str) -> Analysis | None:
    """queued/running -> failed with `reason`; publishes `analysis.failed`. No-op on a finished analysis."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().select_related("media").filter(pk=analysis_id).first()
        if analysis is None or analysis.status not in ACTIVE_STATUSES:
            return analysis
        analysis.status = AnalysisStatus.FAILED
        analysis.failure_reason = reason[:255]
        analysis.finished_at = timezone.now()
        analysis.save(update_fields=["status", "failure_reason", "finished_at"])
        audit_record(actor=None, action="analysis.failed", target=analysis, payload={"reason": analysis.failure_reason})
        _record_media_outcome(analysis, analysis_status=AnalysisStatus.FAILED)
        events.publish(
            events.ANALYSIS_FAILED,
            {
                "analysis_id": str(analysis.pk),
                "media_id": str(analysis.media_id),
                "owner_id": analysis.media.owner_id,
                "kind": analysis.media.kind,
                "reason": analysis.failure_reason,
                "attempts": analysis.attempts,
            },
        )
    logger.warning("analysis %s failed: %s", analysis_id, reason)
    return analysis


def analysis_release(*, analysis_id: Any, reason: str) -> Analysis | None:
    """running -> queued after a transient problem, or failed once the attempts are used up."""
    with transaction.atomic():
        updated = Analysis.objects.filter(
            pk=analysis_id, status=AnalysisStatus.RUNNING, attempts__lt=conf.MAX_ATTEMPTS
        ).update(status=AnalysisStatus.QUEUED, failure_reason=reason[:255])
        if updated:
            analysis = Analysis.objects.get(pk=analysis_id)
            audit_record(actor=None, action="analysis.released", target=analysis, payload={"reason": reason[:255]})
            _record_media_outcome(analysis, analysis_status=AnalysisStatus.QUEUED)
            return analysis
    return analysis_fail(analysis_id=analysis_id, reason=f"failed after {conf.MAX_ATTEMPTS} attempts: {reason}")


# --- reconciliation ------------------------------------------------------------------------------------------
def analysis_reconcile(*, batch_size: int = 500) -> dict[str, int]:
    """The periodic reconciler: re-queue or fail runs stuck past their time limit; re-send stale queued ones."""
    now = timezone.now()
    expired = now - timedelta(seconds=conf.analysis_time_limit_seconds())
    counts = {"requeued": 0, "failed": 0, "resent": 0}

    stuck = list(
        Analysis.objects.filter(status=AnalysisStatus.RUNNING, started_at__lt=expired)
        .order_by("started_at")
        .values_list("pk", "attempts", "started_at")[:batch_size]
    )
    for analysis_id, attempts, started_at in stuck:
        if attempts >= conf.MAX_ATTEMPTS:
            if analysis_fail(analysis_id=analysis_id, reason=STUCK_REASON):
                counts["failed"] += 1
            continue
        with transaction.atomic():
            # Conditional on started_at: a worker that re-claimed it meanwhile has a new started_at.
            if Analysis.objects.filter(pk=analysis_id, status=AnalysisStatus.RUNNING, started_at=started_at).update(
                status=AnalysisStatus.QUEUED, failure_reason="re-queued: exceeded its time limit"
            ):
                analysis = Analysis.objects.get(pk=analysis_id)
                audit_record(actor=None, action="analysis.requeued", target=analysis, payload={"attempts": attempts})
                _record_media_outcome(analysis, analysis_status=AnalysisStatus.QUEUED)
                analysis_enqueue(analysis_id=analysis_id)
                counts["requeued"] += 1

    requeue_after = conf.requeue_after_seconds()
    stale = Analysis.objects.filter(
        status=AnalysisStatus.QUEUED, created_at__lt=now - timedelta(seconds=requeue_after)
    ).filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - timedelta(seconds=requeue_after)))
    for analysis_id, enqueued_at, sent in stale.order_by("created_at").values_list(
        "pk", "enqueued_at", "enqueue_count"
    )[:batch_size]:
        # Back off: the message may simply be waiting in a long queue; resend after 1, 2, 4 ... 64 minutes.
        wait = requeue_after * 2 ** min(max(sent - 1, 0), 6)
        if enqueued_at is None or enqueued_at < now - timedelta(seconds=wait):
            analysis_enqueue(analysis_id=analysis_id)
            counts["resent"] += 1
    if any(counts.values()):
        logger.info("analysis reconciler: %s", counts)
    return counts


# --- scoring policies ----------------------------------------------------------------------------------------
def scoring_policy_activate(*, policy: ScoringPolicy, actor: Any) -> ScoringPolicy:
    """Make `policy` the one active policy (atomic flip; the partial unique index guards the invariant)."""
    with transaction.atomic():
        locked = list(ScoringPolicy.objects.select_for_update().filter(Q(is_active=True) | Q(pk=policy.pk)))
        target = next((p for p in locked if p.pk == policy.pk), None)
        if target is None:
            raise NotFound("No such scoring policy.")
        previous = [p.version for p in locked if p.is_active and p.pk != policy.pk]
        ScoringPolicy.objects.filter(is_active=True).exclude(pk=policy.pk).update(is_active=False)
        ScoringPolicy.objects.filter(pk=policy.pk).update(is_active=True)
        audit_record(
            actor=actor,
            action="scoring_policy.activated",
            target=target,
            payload={"version": target.version, "previous": previous},
        )
    policy.refresh_from_db()
    return policy


def scoring_policy_create(
    *,
    weights: dict[str, float],
    bias: float,
    base: ScoringPolicy | None,
    notes: str,
    actor: Any | None = None,
    proposed_by_calibration: bool = False,
) -> ScoringPolicy:
    """A new, inactive policy version (never activated here: a person activates it in admin). Everything but
    the weights and bias is carried over from `base`, or from the defaults without one."""
    carried = scoring.Policy.from_obj(base) if base else scoring.DEFAULT_POLICY
    with transaction.atomic():
        version = (ScoringPolicy.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0) + 1
        policy = ScoringPolicy.objects.create(
            version=version,
            is_active=False,
            bias=bias,
            weights=weights,
            decisive=dict(carried.decisive),
            clip=carried.clip,
            authentic_threshold=carried.authentic_threshold,
            manipulated_threshold=carried.manipulated_threshold,
            edited_only_cap=carried.edited_only_cap,
            notes=notes,
            proposed_by_calibration=proposed_by_calibration,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            actor=actor,
            action="scoring_policy.created",
            target=policy,
            payload={"version": version, "weights": weights, "bias": bias, "calibration": proposed_by_calibration},
        )
    return policy


# --- helpers -------------------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Detector evidence made safe for JSONField on SQLite and PostgreSQL: numpy scalars to Python numbers,
    NaN/inf to None (jsonb refuses them), enums to their value, anything else unknown to its string."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array
        return jsonable(value.tolist())
    if isinstance(value, bytes):
        return value.hex()[:512]
    return json.loads(json.dumps(str(value)))
