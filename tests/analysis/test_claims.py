"""Claims with a lease: the worker renews it while it works; a lapsed lease lets another worker take over, and
the old holder, should it wake up, changes nothing (docs/analysis.md "Claims and leases")."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.db import connection
from django.utils import timezone

from analysis import services, steps
from analysis.detectors import registry
from analysis.detectors.base import Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.models import Analysis, AnalysisQueue, AnalysisStatus, DetectorResult
from hlekkr import events
from hlekkr.accounts.models import User
from media.models import MediaItem


class _Slow(Detector):
    name: ClassVar[str] = "ela"
    version: ClassVar[str] = "0"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        time.sleep(1.3)
        return DetectorOutput(status="ok", probability=0.3)


class _Quick(Detector):
    name: ClassVar[str] = "jpeg"
    version: ClassVar[str] = "0"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        return DetectorOutput(status="ok", probability=0.2)


def _use(monkeypatch: pytest.MonkeyPatch, *classes: type[Detector]) -> None:
    monkeypatch.setattr(registry, "detectors", lambda *args, **kwargs: [cls() for cls in classes])


def test_the_worker_renews_its_lease_while_a_slow_detector_runs(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.HLEKKR_ANALYSIS_LEASE_SECONDS = 1  # renewed every third of a second
    _use(monkeypatch, _Slow)
    renewals: list[Any] = []
    real_renew = services.analysis_lease_renew

    def renew(*, analysis: Analysis) -> None:
        real_renew(analysis=analysis)
        renewals.append(Analysis.objects.values_list("lease_expires_at", flat=True).get(pk=analysis.pk))

    monkeypatch.setattr(services, "analysis_lease_renew", renew)
    analysis = services.analysis_create(media=stored_media(client_a))
    done = services.analysis_run(analysis_id=analysis.pk)
    assert done is not None and done.status == AnalysisStatus.COMPLETED
    # After the copy, then about every 0.33 s of the 1.3 s detector: each renewal pushes the expiry forward.
    assert len(renewals) >= 3 and renewals == sorted(renewals) and renewals[-1] > renewals[0]
    assert done.lease_token is None and done.lease_expires_at is None


def test_a_holder_whose_claim_was_taken_over_stops_and_the_new_holder_completes_once(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, published: list[Any]
) -> None:
    _use(monkeypatch, _Quick, _Slow)
    analysis = services.analysis_create(media=stored_media(client_a))
    real_store = services._store_result
    stolen: list[uuid.UUID] = []

    def store_then_lose_the_claim(held: Analysis, run: Any, **kwargs: Any) -> Any:
        row = real_store(held, run, **kwargs)
        if not stolen:  # the worker stalled past its lease and another worker claimed the analysis meanwhile
            stolen.append(uuid.uuid4())
            Analysis.objects.filter(pk=held.pk).update(lease_token=stolen[0])
        return row

    monkeypatch.setattr(services, "_store_result", store_then_lose_the_claim)
    assert services.analysis_run(analysis_id=analysis.pk) is None  # the stale holder stops
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING and analysis.lease_token == stolen[0]
    assert list(analysis.detector_results.values_list("detector", flat=True)) == ["jpeg"]
    assert published == []

    # The new holder's lease lapses too (it died); the redelivered task finishes the work exactly once.
    monkeypatch.setattr(services, "_store_result", real_store)
    Analysis.objects.filter(pk=analysis.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    done = services.analysis_run(analysis_id=analysis.pk)
    assert done is not None and done.status == AnalysisStatus.COMPLETED
    assert Counter(DetectorResult.objects.filter(analysis=analysis).values_list("detector", flat=True)) == {
        "jpeg": 1,
        "ela": 1,
    }
    assert [event for event, _ in published] == [events.ANALYSIS_COMPLETED]


def test_a_completion_by_a_holder_that_lost_its_claim_is_refused(client_a: Any, stored_media: Any) -> None:
    analysis = services.analysis_create(media=stored_media(client_a))
    held = services.analysis_claim(analysis_id=analysis.pk)
    assert held is not None
    Analysis.objects.filter(pk=analysis.pk).update(lease_token=uuid.uuid4())  # taken over meanwhile
    with pytest.raises(services.LeaseLost):
        services.analysis_lease_renew(analysis=held)
    result = services.analysis_fail(analysis_id=analysis.pk, reason="from the stale holder", token=held.lease_token)
    assert result is not None and result.status == AnalysisStatus.RUNNING


def test_a_step_held_by_a_live_worker_is_not_claimed_again(client_a: Any, stored_media: Any) -> None:
    analysis = services.analysis_create(media=stored_media(client_a))
    Analysis.objects.filter(pk=analysis.pk).update(status=AnalysisStatus.RUNNING, step="bedrock")
    first = services.analysis_step_claim(analysis_id=analysis.pk, step=steps.BEDROCK)
    assert first is not None and first.step_attempts == 1
    assert services.analysis_step_claim(analysis_id=analysis.pk, step=steps.BEDROCK) is None
    Analysis.objects.filter(pk=analysis.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = services.analysis_step_claim(analysis_id=analysis.pk, step=steps.BEDROCK)
    assert second is not None and second.step_attempts == 2 and second.lease_token != first.lease_token


# --- PostgreSQL: real concurrent claims --------------------------------------------------------------------------
def _race(count: int, claim: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def contender() -> None:
        try:
            barrier.wait()
            outcome = claim()
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=contender) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _seed(owner: User, **fields: Any) -> Analysis:
    media = MediaItem.objects.create(owner=owner, kind="image", sha256=uuid.uuid4().hex * 2, status="stored")
    return Analysis.objects.create(media=media, run_number=1, queue=AnalysisQueue.INTERACTIVE, **fields)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_claim_an_analysis_exactly_once(client_a: User) -> None:
    queued = _seed(client_a)
    lapsed = _seed(
        client_a,
        status=AnalysisStatus.RUNNING,
        step="local",
        attempts=1,
        lease_token=uuid.uuid4(),
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )
    for analysis in (queued, lapsed):
        results = _race(8, lambda a=analysis: services.analysis_claim(analysis_id=a.pk))
        winners = [r for r in results if r is not None]
        assert len(results) == 8 and len(winners) == 1
        analysis.refresh_from_db()
        assert analysis.lease_token == winners[0].lease_token and analysis.status == AnalysisStatus.RUNNING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_step_messages_claim_the_bedrock_step_exactly_once(client_a: User) -> None:
    waiting = _seed(client_a, status=AnalysisStatus.RUNNING, step="bedrock", attempts=1)
    results = _race(8, lambda: services.analysis_step_claim(analysis_id=waiting.pk, step=steps.BEDROCK))
    assert len(results) == 8 and len([r for r in results if r is not None]) == 1
    waiting.refresh_from_db()
    assert waiting.step_attempts == 1


def test_a_redelivery_that_finds_the_claim_held_looks_again_when_the_lease_would_lapse(
    client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch, published: list[Any]
) -> None:
    from celery.exceptions import Retry

    from analysis.tasks import analyze_media_task

    _use(monkeypatch, _Quick)
    analysis = services.analysis_create(media=stored_media(client_a))
    held = services.analysis_claim(analysis_id=analysis.pk)  # the worker that will be SIGKILLed
    assert held is not None
    Analysis.objects.filter(pk=analysis.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=12))
    retries: list[float] = []

    def retry(**kwargs: Any) -> Retry:
        retries.append(kwargs["countdown"])
        return Retry()

    monkeypatch.setattr(analyze_media_task, "retry", retry)
    with pytest.raises(Retry):
        analyze_media_task.run(str(analysis.pk))  # Celery's immediate redelivery after the kill
    assert 12 < retries[0] <= 13.5
    # The retry comes after the lease lapsed: it takes the analysis over and completes it, once.
    Analysis.objects.filter(pk=analysis.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    analyze_media_task.run(str(analysis.pk))
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.COMPLETED and analysis.attempts == 2
    assert [event for event, _ in published] == [events.ANALYSIS_COMPLETED]
    analyze_media_task.run(str(analysis.pk))  # a late duplicate: nothing to wait for, nothing to do
    assert len(retries) == 1
