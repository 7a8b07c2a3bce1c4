"""The analysis lifecycle: media.stored -> queued -> running -> completed/failed, retries, the reconciler."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any, ClassVar
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from analysis import services
from analysis.detectors import registry
from analysis.detectors.base import Artifact, Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.models import Analysis, AnalysisQueue, AnalysisStatus, DetectorResult
from analysis.tasks import analyze_media_task, reconcile_analyses_task
from hlekkr import events
from hlekkr.exceptions import TransientError
from media.models import MediaItem


class _Boom(Detector):
    name: ClassVar[str] = "boom"
    version: ClassVar[str] = "0"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise RuntimeError("kaput")


class _WithArtifact(Detector):
    name: ClassVar[str] = "with_artifact"
    version: ClassVar[str] = "0"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        return DetectorOutput(status="ok", probability=0.5, artifacts=[Artifact("map.png", "image/png", b"png")])


class _Fixed(Detector):
    name: ClassVar[str] = "ela"  # scores under a weighted name
    version: ClassVar[str] = "0"
    ran: ClassVar[list[str]] = []

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        _Fixed.ran.append(self.name)
        return DetectorOutput(status="ok", probability=0.2)


_release = threading.Event()


class _Hang(Detector):
    name: ClassVar[str] = "hang"
    version: ClassVar[str] = "0"
    time_budget_s: ClassVar[float] = 0.2

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        _release.wait(30)
        return DetectorOutput(status="ok", probability=0.9)


def _use_detectors(monkeypatch: pytest.MonkeyPatch, *classes: type[Detector]) -> None:
    monkeypatch.setattr(registry, "detectors", lambda *args, **kwargs: [cls() for cls in classes])


def _queued(stored_media: Any, owner: Any, **kwargs: Any) -> Analysis:
    return services.analysis_create(media=stored_media(owner, **kwargs), queue=AnalysisQueue.INTERACTIVE)


def _stored_event(item: Any) -> dict[str, Any]:
    return {"media_id": str(item.pk), "owner_id": item.owner_id, "kind": item.kind, "queue": "interactive"}


# --- media.stored -----------------------------------------------------------------------------------------------
def test_media_stored_creates_one_queued_analysis_and_enqueues_only_after_commit(
    client_a: Any, stored_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    item = stored_media(client_a)
    with (
        mock.patch.object(analyze_media_task, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        events.publish(events.MEDIA_STORED, _stored_event(item))
        events.publish(events.MEDIA_STORED, _stored_event(item))  # a duplicate delivery
        assert Analysis.objects.filter(media=item, status=AnalysisStatus.QUEUED).count() == 1
        send.assert_not_called()  # nothing leaves before the media row commits
    analysis = Analysis.objects.get(media=item)
    assert analysis.run_number == 1 and analysis.queue == AnalysisQueue.INTERACTIVE
    assert len(callbacks) >= 1
    send.assert_called_once_with(args=[str(analysis.pk)], queue="interactive")
    analysis.refresh_from_db()
    assert analysis.enqueued_at is not None and analysis.enqueue_count == 1
    item.refresh_from_db()
    assert item.analysis_status == AnalysisStatus.QUEUED


def test_a_rolled_back_upload_leaves_no_analysis_and_sends_nothing(
    client_a: Any, stored_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    item = stored_media(client_a)
    with (
        mock.patch.object(analyze_media_task, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        events.publish(events.MEDIA_STORED, _stored_event(item))
        raise RuntimeError("upload failed later in the transaction")
    assert not Analysis.objects.filter(media=item).exists()
    send.assert_not_called()


def test_a_stored_upload_is_analysed_end_to_end_by_the_real_detectors(
    client_a: Any, stored_media: Any, django_capture_on_commit_callbacks: Any, published: list[Any]
) -> None:
    item = stored_media(client_a)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.publish(events.MEDIA_STORED, _stored_event(item))
    analysis = Analysis.objects.get(media=item)
    assert analysis.status == AnalysisStatus.COMPLETED, analysis.failure_reason
    names = set(analysis.detector_results.values_list("detector", flat=True))
    assert names == {cls.name for cls in registry.detector_classes()}
    assert analysis.attempts == 1 and analysis.trust_score is not None
    assert analysis.scoring_policy is not None and analysis.scoring_policy.version == 1
    assert analysis.timings["total_ms"] >= analysis.timings["download_ms"]
    assert set(analysis.timings["detectors"]) == names
    # The ELA heatmap was stored beside the media under the run's own name.
    ela = analysis.detector_results.get(detector="ela")
    assert ela.artifacts and ela.artifacts[0]["storage_key"].startswith(f"media/{client_a.pk}/{item.pk}/artifacts/r1-")
    item.refresh_from_db()
    assert (item.analysis_status, item.trust_score, item.verdict) == (
        "completed",
        analysis.trust_score,
        analysis.verdict,
    )
    event, payload = published[-1]
    assert event == events.ANALYSIS_COMPLETED
    assert payload["analysis_id"] == str(analysis.pk) and payload["media_id"] == str(item.pk)
    assert payload["owner_id"] == client_a.pk and payload["kind"] == "image"
    assert set(payload) >= {
        "trust_score", "verdict", "manipulation_probability", "confidence", "decisive",
        "detector_scores", "faces", "review_requested", "priority",
    }  # fmt: skip
    assert payload["detector_scores"]["ela"] == ela.score


# --- idempotency and failures of detectors -------------------------------------------------------------------
def test_running_the_task_twice_keeps_one_result_per_detector(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_detectors(monkeypatch, _Fixed)
    analysis = _queued(stored_media, client_a)
    analyze_media_task.apply(args=[str(analysis.pk)])
    analyze_media_task.apply(args=[str(analysis.pk)])  # a redelivery: the claim refuses it
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED and analysis.attempts == 1
    assert DetectorResult.objects.filter(analysis=analysis).count() == 1
    # Even a forced re-run of the same analysis upserts rather than duplicates.
    Analysis.objects.filter(pk=analysis.pk).update(status=AnalysisStatus.QUEUED)
    services.analysis_run(analysis_id=analysis.pk)
    assert DetectorResult.objects.filter(analysis=analysis).count() == 1


def test_a_detector_exception_becomes_an_error_result_and_the_analysis_completes(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_detectors(monkeypatch, _Boom, _Fixed)
    analysis = services.analysis_run(analysis_id=_queued(stored_media, client_a).pk)
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    boom = analysis.detector_results.get(detector="boom")
    assert boom.status == "error" and boom.score is None
    assert boom.evidence["exception"] == "RuntimeError"
    assert analysis.breakdown["errors"] == [{"detector": "boom", "text": boom.reasons[0]["text"]}]
    assert analysis.trust_score is not None  # the other detector still scored


def test_a_hanging_detector_times_out_without_holding_up_the_analysis(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_detectors(monkeypatch, _Hang, _Fixed)
    _release.clear()
    started = time.monotonic()
    try:
        analysis = services.analysis_run(analysis_id=_queued(stored_media, client_a).pk)
    finally:
        _release.set()
    assert time.monotonic() - started < 10
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    hang = analysis.detector_results.get(detector="hang")
    assert hang.status == "abstained" and hang.reasons[0]["code"] == "timeout"


# --- the reconciler -----------------------------------------------------------------------------------------
def _age(analysis: Analysis, **fields: Any) -> None:
    Analysis.objects.filter(pk=analysis.pk).update(**fields)


def _running(analysis: Analysis, *, lease_left: timedelta, attempts: int = 1) -> None:
    """As a worker's claim leaves it: running in the first step, with a lease that lapses after `lease_left`."""
    _age(
        analysis,
        status=AnalysisStatus.RUNNING,
        step="local",
        attempts=attempts,
        started_at=timezone.now() - timedelta(minutes=1),
        lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + lease_left,
    )


def test_the_reconciler_requeues_a_run_whose_worker_stopped_renewing_its_lease(
    client_a: Any, stored_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    analysis = _queued(stored_media, client_a)
    _running(analysis, lease_left=timedelta(seconds=-1))
    with mock.patch.object(analyze_media_task, "apply_async") as send, django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_analyses_task.apply().get()
    assert counts["requeued"] == 1
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.QUEUED and "renewing" in analysis.failure_reason
    assert analysis.lease_token is None and analysis.lease_expires_at is None
    send.assert_called_once_with(args=[str(analysis.pk)], queue="interactive")


def test_the_reconciler_leaves_a_run_with_a_live_lease_alone(client_a: Any, stored_media: Any) -> None:
    analysis = _queued(stored_media, client_a)
    _running(analysis, lease_left=timedelta(seconds=20))
    _age(analysis, started_at=timezone.now() - timedelta(hours=1))  # long-running but renewing: alive
    assert services.analysis_reconcile()["requeued"] == 0
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING


def test_the_reconciler_fails_a_run_stuck_after_three_attempts(
    client_a: Any, stored_media: Any, published: list[Any]
) -> None:
    analysis = _queued(stored_media, client_a)
    _running(analysis, lease_left=timedelta(seconds=-1), attempts=3)
    assert services.analysis_reconcile()["failed"] == 1
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.failure_reason == "stuck: exceeded 3 attempts"
    assert published[-1][0] == events.ANALYSIS_FAILED
    assert published[-1][1]["reason"] == "stuck: exceeded 3 attempts"
    analysis.media.refresh_from_db()
    assert analysis.media.analysis_status == "failed"


def test_the_reconciler_resends_stale_queued_work_with_backoff(
    client_a: Any, stored_media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    analysis = _queued(stored_media, client_a)
    long_ago = timezone.now() - timedelta(minutes=2)
    _age(analysis, created_at=long_ago)  # never sent: the process died between commit and enqueue
    with mock.patch.object(analyze_media_task, "apply_async") as send, django_capture_on_commit_callbacks(execute=True):
        assert services.analysis_reconcile()["resent"] == 1
        # Sent a moment ago: not again yet.
        assert services.analysis_reconcile()["resent"] == 0
    send.assert_called_once_with(args=[str(analysis.pk)], queue="interactive")
    # Two sends already and only 90 s since the last: the backoff waits 2 minutes.
    _age(analysis, enqueue_count=2, enqueued_at=timezone.now() - timedelta(seconds=90))
    assert services.analysis_reconcile()["resent"] == 0
    _age(analysis, enqueued_at=timezone.now() - timedelta(seconds=130))
    with mock.patch.object(analyze_media_task, "apply_async"):
        assert services.analysis_reconcile()["resent"] == 1


def test_a_worker_killed_mid_run_resumes_on_redelivery_once_its_lease_lapsed_without_duplicates(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, published: list[Any]
) -> None:
    class _Second(_Fixed):
        name: ClassVar[str] = "jpeg"

    _Fixed.ran = []
    _use_detectors(monkeypatch, _Fixed, _Second)
    analysis = _queued(stored_media, client_a)
    real_store = services._store_result

    class WorkerKilled(BaseException):
        pass

    def store_then_die(analysis: Any, run: Any, **kwargs: Any) -> Any:
        row = real_store(analysis, run, **kwargs)
        if run.name == "ela":
            raise WorkerKilled  # like SIGKILL after the first result was committed
        return row

    monkeypatch.setattr(services, "_store_result", store_then_die)
    with pytest.raises(WorkerKilled):
        services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING
    assert list(analysis.detector_results.values_list("detector", flat=True)) == ["ela"]
    monkeypatch.setattr(services, "_store_result", real_store)

    # Celery redelivers at once (task_reject_on_worker_lost): the lease is still live, so the claim refuses.
    assert services.analysis_run(analysis_id=analysis.pk) is None
    # Once the lease has lapsed the redelivered task takes the analysis over and finishes it.
    _age(analysis, lease_expires_at=timezone.now() - timedelta(seconds=1))
    done = services.analysis_run(analysis_id=analysis.pk)
    assert done is not None and done.status == AnalysisStatus.COMPLETED and done.attempts == 2
    assert sorted(done.detector_results.values_list("detector", flat=True)) == ["ela", "jpeg"]
    # ela ran once: its stored result was kept on resume. jpeg may also have run in the killed attempt (the
    # pipeline runs two detectors at a time) and lost its result with the worker, as in-flight work does.
    assert _Fixed.ran.count("ela") == 1 and _Fixed.ran[-1] == "jpeg"
    assert [event for event, _ in published] == [events.ANALYSIS_COMPLETED]


# --- storage trouble and missing media ----------------------------------------------------------------------
def test_a_storage_hiccup_releases_the_claim_and_asks_for_a_retry(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = _queued(stored_media, client_a)
    monkeypatch.setattr(services.default_storage, "exists", mock.Mock(side_effect=ConnectionError("S3 down")))
    with pytest.raises(TransientError):
        services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.QUEUED and analysis.attempts == 1
    assert "storage unavailable" in analysis.failure_reason


def test_transient_errors_fail_the_analysis_after_three_attempts(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = _queued(stored_media, client_a)
    monkeypatch.setattr(services.default_storage, "exists", mock.Mock(side_effect=ConnectionError("S3 down")))
    for _ in range(3):
        with pytest.raises(TransientError):
            services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.failure_reason.startswith("failed after 3 attempts: storage unavailable")


def test_media_whose_file_vanished_fails_with_a_reason(client_a: Any, stored_media: Any, published: list[Any]) -> None:
    from django.core.files.storage import default_storage

    analysis = _queued(stored_media, client_a)
    default_storage.delete(analysis.media.storage_key)
    result = services.analysis_run(analysis_id=analysis.pk)
    assert result is not None and result.status == AnalysisStatus.FAILED
    assert result.failure_reason == "media missing: the stored file is gone"
    assert published[-1][0] == events.ANALYSIS_FAILED


def test_a_reanalysis_while_one_is_queued_is_a_conflict(client_a: Any, stored_media: Any) -> None:
    from hlekkr.exceptions import Conflict

    analysis = _queued(stored_media, client_a)
    with pytest.raises(Conflict) as caught:
        services.analysis_create(media=analysis.media, queue=AnalysisQueue.BATCH)
    assert caught.value.code == "analysis_in_progress"


def test_run_numbers_increase_and_reanalyses_go_to_the_batch_queue(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _use_detectors(monkeypatch, _Fixed)
    first = _queued(stored_media, client_a)
    services.analysis_run(analysis_id=first.pk)
    with mock.patch.object(analyze_media_task, "apply_async") as send, django_capture_on_commit_callbacks(execute=True):
        second = services.analysis_request_rerun(media=first.media, user=client_a)
    assert (second.run_number, second.queue, second.requested_by) == (2, "batch", client_a)
    send.assert_called_once_with(args=[str(second.pk)], queue="batch")
    # While the re-analysis waits, the item keeps the previous outcome.
    item = first.media
    item.refresh_from_db()
    assert item.analysis_status == "queued" and item.trust_score is not None


def test_media_deleted_while_its_analysis_runs_ends_failed_without_a_verdict_or_orphaned_artifacts(
    client_a: Any,
    stored_media: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    published: list[Any],
) -> None:
    from django.core.files.storage import default_storage

    from media.services import media_item_delete
    from media.storage import media_prefix

    item = stored_media(client_a)
    analysis = services.analysis_create(media=item)
    store = services._store_result

    def store_then_owner_deletes(*args: Any, **kwargs: Any) -> Any:
        row = store(*args, **kwargs)
        if MediaItem.objects.get(pk=item.pk).status != "deleted":
            media_item_delete(owner=client_a, media_id=item.pk)  # the owner deletes mid-run
        return row

    monkeypatch.setattr(services, "_store_result", store_then_owner_deletes)
    _use_detectors(monkeypatch, _Fixed, _WithArtifact)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.analysis_run(analysis_id=analysis.pk)
    assert result is not None
    result.refresh_from_db()
    assert result.status == AnalysisStatus.FAILED
    assert result.failure_reason == services.MEDIA_GONE_REASON
    assert result.trust_score is None and result.verdict == ""
    assert [event for event, _ in published] == [events.ANALYSIS_FAILED]
    artifacts = f"{media_prefix(item)}/artifacts"
    assert not default_storage.exists(artifacts) or default_storage.listdir(artifacts)[1] == []
    assert DetectorResult.objects.get(analysis=result, detector="with_artifact").artifacts  # one was stored


@pytest.mark.parametrize("threads", [1, 3])
def test_the_worker_runs_as_many_detectors_at_once_as_configured(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, settings: Any, threads: int
) -> None:
    settings.HLEKKR_DETECTOR_THREADS = threads
    _use_detectors(monkeypatch, _Fixed, _WithArtifact)
    seen: list[int] = []
    real = services.run_detectors

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["threads"])
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "run_detectors", recording)
    analysis = services.analysis_run(analysis_id=_queued(stored_media, client_a).pk)
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    assert seen == [threads]
