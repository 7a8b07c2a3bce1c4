"""Every write of the analysis app: the Analysis lifecycle, the pipeline that produces its results, reconciliation
and scoring policies. This module is the one owner of "complete an analysis".

Lifecycle (docs/analysis.md):

    queued --claim--> running --(steps of analysis/steps.py)--> score --complete--> completed
       ^                 |  \\--fail----------------------------------------------> failed
       +--release/lapse--+

The database row is the source of truth. A task only carries the analysis id. `analysis_claim` flips
queued -> running with a conditional UPDATE that also writes a fresh lease token and a lease expiry; the worker
renews the lease while detectors run, and every write it makes afterwards (results, hand-off, completion) is
conditional on still holding that token. A worker that is killed stops renewing: once its lease lapses
(HLEKKR_ANALYSIS_LEASE_SECONDS) a redelivered task or the reconciler takes the analysis over, and the old holder,
should it still be alive, finds its token gone and stops. Results are upserted per (analysis, detector), so a
takeover keeps what was stored and never duplicates it; completion happens once, under a row lock.

A step on another queue (Bedrock) is handed off with its own claim: the analysis stays `running` with the step's
name and no token until that step's worker claims it, so two messages for the same step never both run it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from analysis import conf, scoring, steps
from analysis.detectors.base import AbstainCode
from analysis.detectors.registry import DetectorUnavailable
from analysis.media_input import media_input_for
from analysis.models import (
    Analysis,
    AnalysisQueue,
    AnalysisStatus,
    BedrockCall,
    DetectorResult,
    DetectorStatus,
    ScoringPolicy,
)
from analysis.pipeline import DetectorRun, Heartbeat, elapsed_ms, run_detectors
from hlekkr import events
from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import Conflict, NotFound, TransientError
from media.models import MediaItem, MediaStatus
from media.services import media_item_record_outcome
from media.storage import artifact_save, delete_prefix

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
STUCK_REASON = f"stuck: exceeded {conf.MAX_ATTEMPTS} attempts"
MEDIA_GONE_REASON = "media unavailable: the item was deleted during analysis"


class AnalysisFailed(Exception):
    """An unrecoverable problem with this analysis (not with the infrastructure): fail it with `reason`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class LeaseLost(Exception):
    """This worker's claim on the analysis lapsed and another worker took it over: stop, change nothing."""


# --- media outcome (media owns the denormalised fields; we call its service) -------------------------------
def _record_media_outcome(
    analysis: Analysis, *, analysis_status: str, trust_score: int | None = None, verdict: str = ""
) -> None:
    """Tell the media app about the latest outcome. While a re-analysis is queued, running or after it failed,
    the item keeps the previous run's score and verdict so list filters do not lose it meanwhile."""
    media_item_record_outcome(
        media_id=analysis.media_id,
        analysis_status=analysis_status,
        trust_score=trust_score,
        verdict=verdict,
        keep_scores=analysis_status != AnalysisStatus.COMPLETED,
    )


# --- creation and enqueueing ---------------------------------------------------------------------------------
def analysis_create(
    *,
    media: MediaItem,
    queue: str = AnalysisQueue.INTERACTIVE,
    requested_by: User | AnonymousUser | None = None,
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
            requested_by=requested_by if isinstance(requested_by, User) else None,
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


def _send_after_commit(analysis_id: Any, *, step: str | None, queue: str) -> None:
    """Send the analysis task (step None) or a handed-off step's task after commit. A failed send (broker down)
    is logged and left to the reconciler, which re-sends from the row; it must not raise, because outside a
    transaction on_commit runs at once and an exception would fail the caller."""

    def send() -> None:
        # Imported here: analysis.tasks imports this module at its top (tasks are thin wrappers of services).
        from analysis.tasks import analysis_step_task, analyze_media_task

        try:
            if step is None:
                analyze_media_task.apply_async(args=[str(analysis_id)], queue=queue)
            else:
                analysis_step_task.apply_async(args=[str(analysis_id), step], queue=queue)
        except Exception:
            logger.exception(
                "could not send analysis %s (%s) to the %s queue; the reconciler will retry",
                analysis_id,
                step or "start",
                queue,
            )

    transaction.on_commit(send, robust=True)


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
    _send_after_commit(analysis_id, step=None, queue=str(queue))
    return True


def analysis_enqueue_pending_for_media(*, media_id: Any) -> int:
    """The after-commit `media.stored` subscriber: send the item's queued analyses that were never sent."""
    ids = list(Analysis.objects.filter(media_id=media_id, status=AnalysisStatus.QUEUED).values_list("pk", flat=True))
    return sum(analysis_enqueue(analysis_id=analysis_id, only_if_unsent=True) for analysis_id in ids)


def analysis_request_rerun(*, media: MediaItem, user: User) -> Analysis:
    """Re-analysis asked for through the API: a new run on the batch queue (new uploads go first)."""
    analysis = analysis_create(media=media, queue=AnalysisQueue.BATCH, requested_by=user)
    analysis_enqueue(analysis_id=analysis.pk)
    return analysis


# --- claims and leases ------------------------------------------------------------------------------------------
def _lease_until() -> Any:
    return timezone.now() + timedelta(seconds=conf.lease_seconds())


def _holding(analysis: Analysis) -> Any:
    """The rows this worker may write: the analysis, still running, still under its token."""
    return Analysis.objects.filter(pk=analysis.pk, status=AnalysisStatus.RUNNING, lease_token=analysis.lease_token)


def analysis_lease_renew(*, analysis: Analysis) -> None:
    """Push the lease of a claim this worker holds forward; LeaseLost if another worker has taken it over."""
    if not _holding(analysis).update(lease_expires_at=_lease_until()):
        raise LeaseLost(str(analysis.pk))


def _heartbeat(analysis: Analysis) -> Heartbeat:
    # A third of the lease: two renewals may fail (a slow database) before the claim lapses.
    return Heartbeat(lambda: analysis_lease_renew(analysis=analysis), every=conf.lease_seconds() / 3)


def analysis_claim(*, analysis_id: Any) -> Analysis | None:
    """Claim the first step: queued -> running, or take over a running first step whose lease lapsed (its
    worker died). attempts + 1, a new token, a fresh lease. None: nothing to do (finished, gone, or held by a
    live worker). A claim that finds the attempts used up fails the analysis as stuck instead."""
    now = timezone.now()
    first = steps.PIPELINE[0].name
    claimable = Q(status=AnalysisStatus.QUEUED) | Q(status=AnalysisStatus.RUNNING, step=first, lease_expires_at__lt=now)
    with transaction.atomic():
        updated = Analysis.objects.filter(claimable, pk=analysis_id, attempts__lt=conf.MAX_ATTEMPTS).update(
            status=AnalysisStatus.RUNNING,
            step=first,
            attempts=F("attempts") + 1,
            started_at=now,
            lease_token=uuid.uuid4(),
            lease_expires_at=_lease_until(),
            failure_reason="",
        )
        if updated:
            analysis = Analysis.objects.select_related("media").get(pk=analysis_id)
            audit_record(actor=None, action="analysis.running", target=analysis, payload={"attempt": analysis.attempts})
            _record_media_outcome(analysis, analysis_status=AnalysisStatus.RUNNING)
            return analysis
    exhausted = Analysis.objects.filter(claimable, pk=analysis_id, attempts__gte=conf.MAX_ATTEMPTS).exists()
    if exhausted:
        analysis_fail(analysis_id=analysis_id, reason=STUCK_REASON)
    return None


def analysis_claim_wait_seconds(*, analysis_id: Any) -> float | None:
    """Seconds until the claim on a running first step lapses (at least 0), or None when there is nothing to
    wait for (queued, finished, gone, or in a handed-off step). A task that found the claim taken asks this."""
    row = (
        Analysis.objects.filter(pk=analysis_id, status=AnalysisStatus.RUNNING, step=steps.PIPELINE[0].name)
        .values_list("lease_expires_at", flat=True)
        .first()
    )
    if row is None:
        return None
    return max(0.0, (row - timezone.now()).total_seconds())


def analysis_step_claim(*, analysis_id: Any, step: steps.Step) -> Analysis | None:
    """Claim a handed-off step: only while the analysis waits in that step with no live holder. Two messages
    for the same step (a re-send while the first still waited) therefore run it once."""
    now = timezone.now()
    updated = (
        Analysis.objects.filter(pk=analysis_id, status=AnalysisStatus.RUNNING, step=step.name)
        .filter(Q(lease_token__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_token=uuid.uuid4(), lease_expires_at=_lease_until(), step_attempts=F("step_attempts") + 1)
    )
    if not updated:
        return None
    analysis = Analysis.objects.select_related("media").get(pk=analysis_id)
    audit_record(
        actor=None,
        action="analysis.step_claimed",
        target=analysis,
        payload={"step": step.name, "attempt": analysis.step_attempts},
    )
    return analysis


# --- running the pipeline ----------------------------------------------------------------------------------------
def analysis_run(*, analysis_id: Any) -> Analysis | None:
    """Claim an analysis and run its pipeline from the first step; returns it completed, failed or handed off
    to a step on another queue, or None if it was not claimable.

    Detector exceptions become `error` results; media that cannot be analysed becomes a failed analysis with a
    reason; storage hiccups release the claim and raise TransientError so the task retries with backoff.
    """
    analysis = analysis_claim(analysis_id=analysis_id)
    if analysis is None:
        return None
    return _drive(analysis, steps.PIPELINE[0], release=True)


def analysis_step_run(*, analysis_id: Any, step_name: str) -> Analysis | None:
    """Run a handed-off step (the `analysis.step` task) and carry the pipeline on to completion.

    A step whose workers kept dying (more than MAX_ATTEMPTS claims) is skipped, and the analysis is scored on
    what the other steps found: an optional opinion must delay the score, never block it.
    """
    step = steps.step_named(step_name)
    analysis = analysis_step_claim(analysis_id=analysis_id, step=step)
    if analysis is None:
        return None
    given_up = analysis.step_attempts > conf.MAX_ATTEMPTS
    if given_up:
        logger.error("analysis %s: step %s was interrupted too often; scoring without it", analysis.pk, step.name)
    return _drive(analysis, step, release=False, skip=given_up)


def _drive(analysis: Analysis, step: steps.Step, *, release: bool, skip: bool = False) -> Analysis | None:
    """Run `step` (unless `skip`), then the rest of the pipeline, turning failures into the right lifecycle
    transition: a lost claim stops quietly, a transient error releases the claim and raises for a retry."""
    try:
        if not skip:
            _run_step(analysis, step)
        return _finish_from(analysis, step)
    except LeaseLost:
        logger.warning("analysis %s: the claim was taken over by another worker; this one stops", analysis.pk)
        return None
    except AnalysisFailed as exc:
        return analysis_fail(analysis_id=analysis.pk, reason=exc.reason, token=analysis.lease_token)
    except TransientError as exc:
        _release(analysis, step, reason=exc.message, requeue=release)
        raise
    except Exception as exc:
        # Celery's SoftTimeLimitExceeded is an Exception too: releasing lets the retry or reconciler pick it up.
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            _release(analysis, step, reason="soft time limit exceeded", requeue=release)
            raise
        logger.exception("analysis %s failed in step %s", analysis.pk, step.name)
        return analysis_fail(
            analysis_id=analysis.pk, reason=f"pipeline error: {type(exc).__name__}", token=analysis.lease_token
        )


def _release(analysis: Analysis, step: steps.Step, *, reason: str, requeue: bool) -> None:
    if requeue:
        analysis_release(analysis_id=analysis.pk, reason=reason)
    else:  # a handed-off step: drop the claim so the task's retry (or a re-send) can take it again
        _holding(analysis).update(lease_token=None, lease_expires_at=None)


def _is_timeout(reasons: Any) -> bool:
    return bool(reasons) and isinstance(reasons, list) and reasons[0].get("code") == str(AbstainCode.TIMEOUT)


def _run_step(analysis: Analysis, step: steps.Step) -> None:
    """Run the step's detectors that have no usable result yet, storing each result as it comes."""
    item = analysis.media
    if item.status != MediaStatus.STORED or not item.storage_key:
        raise AnalysisFailed("media unavailable: the item is not stored (deleted or rejected)")
    try:
        detectors = step.detectors()
    except DetectorUnavailable as exc:
        # This worker's install is broken; another worker's may not be. After MAX_ATTEMPTS the analysis fails
        # with this reason rather than being scored without the detector.
        raise TransientError(str(exc)) from exc
    # Resume: results already stored by an earlier claim are kept, except errors and timeouts (another chance).
    kept = {
        (name, version)
        for name, version, status, reasons in analysis.detector_results.values_list(
            "detector", "detector_version", "status", "reasons"
        )
        if status != DetectorStatus.ERROR and not _is_timeout(reasons)
    }
    todo = [d for d in detectors if (d.name, d.version) not in kept]
    timings: dict[str, Any] = dict(analysis.timings or {})
    if not todo:
        return
    started = time.perf_counter()
    try:
        exists = default_storage.exists(item.storage_key)
    except Exception as exc:
        raise TransientError(f"storage unavailable: {type(exc).__name__}") from exc
    if not exists:
        raise AnalysisFailed("media missing: the stored file is gone")
    context = step.context()
    heartbeat = _heartbeat(analysis)
    detector_ms: dict[str, int] = dict(timings.get("detectors", {}))
    try:
        with media_input_for(item) as media_input:
            analysis_lease_renew(analysis=analysis)  # the copy may have taken a while
            timings.setdefault("download_ms", elapsed_ms(started))
            for run in run_detectors(
                todo,
                media_input,
                context,
                budget_scale=conf.detector_budget_scale(),
                heartbeat=heartbeat,
                threads=conf.detector_threads(),
            ):
                _store_result(analysis, run, records_calls=step.records_calls)
                detector_ms[run.name] = run.duration_ms
    except FileNotFoundError as exc:
        raise AnalysisFailed("media missing: the stored file is gone") from exc
    except OSError as exc:
        raise TransientError(f"storage error while copying media: {type(exc).__name__}") from exc
    timings["detectors"] = detector_ms
    timings[f"{step.name}_ms"] = elapsed_ms(started)
    analysis.timings = timings
    _holding(analysis).update(timings=timings)


def _finish_from(analysis: Analysis, done: steps.Step) -> Analysis:
    """After `done`: run the next inline steps, hand off to the next step on another queue, or, after the last
    step that applies, score and complete."""
    for step in steps.steps_after(done):
        if not step.applies(analysis.media):
            continue
        if step.queue is None:
            _run_step(analysis, step)
            continue
        _hand_off(analysis, step)
        return analysis
    return _score_and_complete(analysis)


def _hand_off(analysis: Analysis, step: steps.Step) -> None:
    """Give up this worker's claim and send the step to its queue; the step's worker claims it there."""
    assert step.queue is not None
    with transaction.atomic():
        if not _holding(analysis).update(
            step=step.name,
            lease_token=None,
            lease_expires_at=None,
            step_attempts=0,
            enqueued_at=timezone.now(),
            enqueue_count=1,
        ):
            raise LeaseLost(str(analysis.pk))
        audit_record(actor=None, action="analysis.handed_off", target=analysis, payload={"step": step.name})
        _send_after_commit(analysis.pk, step=step.name, queue=step.queue)
    analysis.step = step.name


def _score_and_complete(analysis: Analysis) -> Analysis:
    """Score every stored detector result with the active policy and complete the analysis."""
    scoring_started = time.perf_counter()
    policy_row = ScoringPolicy.objects.filter(is_active=True).first()
    policy = scoring.Policy.from_obj(policy_row) if policy_row else scoring.DEFAULT_POLICY
    if policy_row is None:
        logger.warning("no active scoring policy; scoring analysis %s with the built-in defaults", analysis.pk)
    results = list(analysis.detector_results.all())
    outcome = scoring.score([_evidence(r) for r in results], policy)
    timings: dict[str, Any] = dict(analysis.timings or {})
    timings["scoring_ms"] = elapsed_ms(scoring_started)
    if analysis.started_at:
        timings["total_ms"] = max(0, round((timezone.now() - analysis.started_at).total_seconds() * 1000))
    return analysis_complete(analysis=analysis, outcome=outcome, policy=policy_row, timings=timings, results=results)


def _evidence(row: DetectorResult) -> scoring.DetectorEvidence:
    return scoring.DetectorEvidence(
        detector=row.detector,
        status=row.status,
        score=row.score if row.status == DetectorStatus.OK else None,
        reasons=row.reasons or [],
        decisive=row.decisive or [],
    )


_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def _store_result(analysis: Analysis, run: DetectorRun, *, records_calls: bool = False) -> DetectorResult:
    """Upsert the detector's row (idempotent on (analysis, detector)) and store its artifacts, as long as this
    worker still holds the claim; with `records_calls`, the billed calls in its evidence too."""
    item = analysis.media
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
    with transaction.atomic():
        if not _holding(analysis).select_for_update().exists():
            raise LeaseLost(str(analysis.pk))
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
        if records_calls:
            bedrock_calls_record(analysis=analysis, evidence=output.evidence)
    return row


def bedrock_calls_record(*, analysis: Analysis | None, evidence: dict[str, Any]) -> int:
    """One BedrockCall row per call listed in a detector's evidence; idempotent per (run_id, sequence)."""
    calls = evidence.get("calls") or []
    run_id = evidence.setdefault("run_id", str(uuid.uuid4()))
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


def analysis_complete(
    *,
    analysis: Analysis,
    outcome: scoring.ScoreResult,
    policy: ScoringPolicy | None,
    timings: dict[str, Any],
    results: list[DetectorResult],
) -> Analysis:
    """running -> completed with the score, by the worker holding the claim; updates the media outcome and
    publishes `analysis.completed` (once: the row lock and the token make a second completion a no-op)."""
    with transaction.atomic():
        current = Analysis.objects.select_for_update().select_related("media").get(pk=analysis.pk)
        if current.status != AnalysisStatus.RUNNING or current.lease_token != analysis.lease_token:
            return current  # finished, failed or taken over elsewhere meanwhile: keep that outcome
        if current.media.status != MediaStatus.STORED:
            # Deleted while the detectors ran: completing would publish a verdict (review item, webhook) for an
            # item that no longer exists, and the artifacts stored since the deletion would be orphaned.
            _remove_media_objects_after_commit(current.media)
            return analysis_fail(analysis_id=current.pk, reason=MEDIA_GONE_REASON) or current
        current.status = AnalysisStatus.COMPLETED
        current.finished_at = timezone.now()
        current.manipulation_probability = outcome.manipulation_probability
        current.trust_score = outcome.trust_score
        current.confidence = outcome.confidence
        current.verdict = outcome.verdict
        current.scoring_policy = policy
        current.breakdown = jsonable(outcome.breakdown)
        current.timings = timings
        current.lease_token = None
        current.lease_expires_at = None
        current.save()
        audit_record(
            actor=None,
            action="analysis.completed",
            target=current,
            payload={
                "trust_score": current.trust_score,
                "verdict": current.verdict,
                "policy_version": policy.version if policy else None,
            },
        )
        _record_media_outcome(
            current,
            analysis_status=AnalysisStatus.COMPLETED,
            trust_score=current.trust_score,
            verdict=current.verdict,
        )
        events.publish(events.ANALYSIS_COMPLETED, completed_payload(current, results))
    return current


def _remove_media_objects_after_commit(item: MediaItem) -> None:
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


def analysis_fail(*, analysis_id: Any, reason: str, token: uuid.UUID | None = None) -> Analysis | None:
    """queued/running -> failed with `reason`; publishes `analysis.failed`. No-op on a finished analysis, and,
    when the failing worker passes its `token`, on an analysis another worker has taken over."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().select_related("media").filter(pk=analysis_id).first()
        if analysis is None or analysis.status not in ACTIVE_STATUSES:
            return analysis
        if token is not None and analysis.lease_token != token:
            return analysis
        analysis.status = AnalysisStatus.FAILED
        analysis.failure_reason = reason[:255]
        analysis.finished_at = timezone.now()
        analysis.lease_token = None
        analysis.lease_expires_at = None
        analysis.save(update_fields=["status", "failure_reason", "finished_at", "lease_token", "lease_expires_at"])
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
        ).update(
            status=AnalysisStatus.QUEUED, step="", lease_token=None, lease_expires_at=None, failure_reason=reason[:255]
        )
        if updated:
            analysis = Analysis.objects.get(pk=analysis_id)
            audit_record(actor=None, action="analysis.released", target=analysis, payload={"reason": reason[:255]})
            _record_media_outcome(analysis, analysis_status=AnalysisStatus.QUEUED)
            return analysis
    return analysis_fail(analysis_id=analysis_id, reason=f"failed after {conf.MAX_ATTEMPTS} attempts: {reason}")


# --- reconciliation ------------------------------------------------------------------------------------------
def analysis_reconcile(*, batch_size: int = 500) -> dict[str, int]:
    """The periodic reconciler (every few seconds, analysis/beat.py):

    * a running analysis whose lease lapsed lost its worker: in the first step it is re-queued (or failed once
      its attempts are used up); in a handed-off step its claim is dropped and the step is sent again;
    * a handed-off step whose message may have been lost is sent again, with backoff;
    * a queued analysis whose message may have been lost is sent again, with backoff.
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "resent": 0, "steps_resent": 0}
    first = steps.PIPELINE[0].name

    lapsed = list(
        Analysis.objects.filter(status=AnalysisStatus.RUNNING, lease_expires_at__lt=now)
        .order_by("lease_expires_at")
        .values_list("pk", "attempts", "step", "lease_token")[:batch_size]
    )
    for analysis_id, attempts, step_name, token in lapsed:
        holder = Analysis.objects.filter(
            pk=analysis_id, status=AnalysisStatus.RUNNING, lease_token=token, lease_expires_at__lt=now
        )
        if step_name != first:
            if holder.update(lease_token=None, lease_expires_at=None):
                _resend_step(analysis_id, step_name)
                counts["steps_resent"] += 1
            continue
        if attempts >= conf.MAX_ATTEMPTS:
            if analysis_fail(analysis_id=analysis_id, reason=STUCK_REASON, token=token):
                counts["failed"] += 1
            continue
        with transaction.atomic():
            # Conditional on the token and the lapse: a worker that renewed or re-claimed meanwhile keeps it.
            if holder.update(
                status=AnalysisStatus.QUEUED,
                step="",
                lease_token=None,
                lease_expires_at=None,
                failure_reason="re-queued: its worker stopped renewing the claim",
            ):
                analysis = Analysis.objects.get(pk=analysis_id)
                audit_record(actor=None, action="analysis.requeued", target=analysis, payload={"attempts": attempts})
                _record_media_outcome(analysis, analysis_status=AnalysisStatus.QUEUED)
                analysis_enqueue(analysis_id=analysis_id)
                counts["requeued"] += 1

    requeue_after = conf.requeue_after_seconds()

    def due(enqueued_at: Any, sent: int) -> bool:
        # Back off: the message may simply be waiting in a long queue; resend after 1, 2, 4 ... 64 minutes.
        wait = requeue_after * 2 ** min(max(sent - 1, 0), 6)
        return enqueued_at is None or enqueued_at < now - timedelta(seconds=wait)

    waiting = Analysis.objects.filter(
        status=AnalysisStatus.RUNNING, lease_token__isnull=True, enqueued_at__lt=now - timedelta(seconds=requeue_after)
    ).exclude(step=first)
    for analysis_id, step_name, enqueued_at, sent in waiting.values_list("pk", "step", "enqueued_at", "enqueue_count")[
        :batch_size
    ]:
        if due(enqueued_at, sent) and _resend_step(analysis_id, step_name):
            counts["steps_resent"] += 1

    stale = Analysis.objects.filter(
        status=AnalysisStatus.QUEUED, created_at__lt=now - timedelta(seconds=requeue_after)
    ).filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - timedelta(seconds=requeue_after)))
    for analysis_id, enqueued_at, sent in stale.order_by("created_at").values_list(
        "pk", "enqueued_at", "enqueue_count"
    )[:batch_size]:
        if due(enqueued_at, sent):
            analysis_enqueue(analysis_id=analysis_id)
            counts["resent"] += 1
    if any(counts.values()):
        logger.info("analysis reconciler: %s", counts)
    return counts


def _resend_step(analysis_id: Any, step_name: str) -> bool:
    """Send a waiting handed-off step again (its claim makes a duplicate message harmless)."""
    try:
        step = steps.step_named(step_name)
    except KeyError:
        logger.error("analysis %s waits in unknown step %r; re-queueing it", analysis_id, step_name)
        Analysis.objects.filter(pk=analysis_id, status=AnalysisStatus.RUNNING, step=step_name).update(
            status=AnalysisStatus.QUEUED, step="", lease_token=None, lease_expires_at=None
        )
        return analysis_enqueue(analysis_id=analysis_id)
    assert step.queue is not None
    if not Analysis.objects.filter(
        pk=analysis_id, status=AnalysisStatus.RUNNING, step=step_name, lease_token__isnull=True
    ).update(enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1):
        return False
    _send_after_commit(analysis_id, step=step_name, queue=step.queue)
    return True


# --- scoring policies ----------------------------------------------------------------------------------------
def scoring_policy_activate(*, policy: ScoringPolicy, actor: User | None) -> ScoringPolicy:
    """Make `policy` the one active policy (atomic flip; the partial unique index guards the invariant).

    Every policy row is locked, in primary-key order: concurrent activations then run one after the other, and
    each sees the current rows (locking only "active or target" let a waiting activation read the active row
    as it was before its wait, so it recorded no predecessor and could collide with a third on the index).
    There are a few dozen versions at most."""
    with transaction.atomic():
        locked = list(ScoringPolicy.objects.select_for_update().order_by("pk"))
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
    actor: User | None = None,
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
            clean_evidence_cap=carried.clean_evidence_cap,
            notes=notes,
            proposed_by_calibration=proposed_by_calibration,
            created_by=actor,
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
