"""A detector that cannot load fails loudly: load states, readiness, doctor and the pipeline all refuse it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from analysis import services
from analysis.detectors import registry
from analysis.detectors.base import DetectorConfig
from analysis.models import AnalysisStatus
from hlekkr.exceptions import TransientError
from hlekkr.ops.models import WorkerHeartbeat
from hlekkr.ops.tasks import heartbeat_task

BROKEN = registry.DetectorSpec("copy_move", "analysis.detectors.no_such_module", "CopyMoveDetector")


@pytest.fixture
def copy_move_broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if OpenCV failed to import: the copy_move module cannot be loaded in this process."""
    specs = tuple(BROKEN if s.name == "copy_move" else s for s in registry.REGISTERED)
    monkeypatch.setattr(registry, "REGISTERED", specs)
    registry.load_states.cache_clear()
    yield
    registry.load_states.cache_clear()


def test_every_registered_detector_loads_in_this_install() -> None:
    states = registry.load_states()
    assert [s.name for s in states] == [s.name for s in registry.REGISTERED]
    assert all(s.loaded and s.error == "" for s in states), [s for s in states if not s.loaded]


def test_a_detector_whose_import_fails_is_recorded_with_its_error(copy_move_broken: None) -> None:
    state = next(s for s in registry.load_states() if s.name == "copy_move")
    assert not state.loaded and state.error.startswith("ModuleNotFoundError")
    assert "copy_move" not in {cls.name for cls in registry.detector_classes()}


def test_a_spec_naming_the_wrong_class_does_not_load() -> None:
    state = registry.load(registry.DetectorSpec("ela", "analysis.detectors.jpeg", "JpegDetector"))
    assert not state.loaded and "is not the 'ela' Detector" in state.error


def test_building_the_detectors_refuses_a_missing_required_one(copy_move_broken: None) -> None:
    with pytest.raises(registry.DetectorUnavailable, match="copy_move"):
        registry.detectors(DetectorConfig())
    # Listed as optional, the rest run without it.
    names = {d.name for d in registry.detectors(DetectorConfig(), optional=frozenset({"copy_move"}))}
    assert "copy_move" not in names and "ela" in names


def test_an_analysis_is_not_scored_without_a_required_detector(
    copy_move_broken: None, client_a: Any, stored_media: Any
) -> None:
    analysis = services.analysis_create(media=stored_media(client_a))
    for _ in range(3):
        with pytest.raises(TransientError, match="copy_move"):
            services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.FAILED and analysis.trust_score is None
    assert "copy_move" in analysis.failure_reason and not analysis.detector_results.exists()


def test_readiness_in_a_process_that_loaded_the_detectors_fails_and_names_the_missing_one(
    copy_move_broken: None, client: Any
) -> None:
    registry.load_states()  # as in a worker: the detectors are loaded here
    response = client.get("/health/ready")
    assert response.status_code == 503
    detectors = response.json()["components"]["detectors"]
    assert detectors["status"] == "down" and "copy_move" in detectors["detail"]
    assert detectors["data"]["detectors"]["copy_move"]["loaded"] is False
    assert detectors["data"]["detectors"]["ela"] == {"loaded": True, "required": True}


def test_an_optional_detector_that_did_not_load_only_degrades_readiness(
    copy_move_broken: None, client: Any, settings: Any
) -> None:
    settings.HLEKKR_OPTIONAL_DETECTORS = ["copy_move"]
    registry.load_states()
    detectors = client.get("/health/ready").json()["components"]["detectors"]
    assert detectors["status"] == "degraded" and detectors["required"] is True


def test_a_web_process_reads_the_workers_reports_instead_of_importing_the_detectors(
    copy_move_broken: None, client: Any, db: Any
) -> None:
    # The fixture cleared this process's load states: like a web process, it has not imported any detector.
    heartbeat_task.apply(args=["interactive"])  # a worker whose install lacks copy_move reports it
    assert registry.load_states.cache_info().currsize == 1  # the heartbeat (the worker side) loaded them
    registry.load_states.cache_clear()
    response = client.get("/health/ready")
    assert response.status_code == 503
    detectors = response.json()["components"]["detectors"]
    assert detectors["status"] == "down" and "copy_move" in detectors["detail"]
    assert registry.load_states.cache_info().currsize == 0  # readiness imported nothing
    heartbeat_task.apply(args=["webhooks"])  # other queues report nothing about detectors
    assert WorkerHeartbeat.objects.get(queue="webhooks").detector_errors is None


def test_a_web_process_is_ready_when_the_workers_load_every_detector(client: Any, db: Any) -> None:
    registry.load_states.cache_clear()
    assert client.get("/health/ready").json()["components"]["detectors"]["status"] == "ok"  # nobody reported yet
    heartbeat_task.apply(args=["batch"])
    registry.load_states.cache_clear()
    detectors = client.get("/health/ready").json()["components"]["detectors"]
    assert detectors["status"] == "ok" and "1 analysis worker(s) loaded every required detector" in detectors["detail"]


def test_doctor_fails_on_a_missing_required_detector(copy_move_broken: None, db: Any) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("doctor", "--json", stdout=out, stderr=io.StringIO())
    assert failed.value.returncode == 1
    finding = next(f for f in json.loads(out.getvalue())["findings"] if f["check"] == "detectors")
    assert finding["status"] == "FAIL" and "copy_move" in finding["detail"]
