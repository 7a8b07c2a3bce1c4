"""Analysis results through the API: media detail, re-analysis, history, one analysis, artifacts, scoping."""

from __future__ import annotations

from typing import Any, ClassVar
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analysis import services
from analysis.detectors import registry
from analysis.detectors.base import Artifact, Detector, DetectorContext, DetectorOutput, MediaInput, Reason
from analysis.models import Analysis, AnalysisStatus
from analysis.tasks import analyze_media_task
from hlekkr.accounts.services import api_key_create
from media.storage import download_token_key

pytestmark = pytest.mark.urls("tests.analysis.urls_analysis")


class _Heat(Detector):
    name: ClassVar[str] = "ela"
    version: ClassVar[str] = "9"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        return DetectorOutput(
            status="ok",
            probability=0.3,
            reasons=[Reason("ela_uniform", "Uniform.", "info")],  # type: ignore[arg-type]
            evidence={"blocks": 4},
            artifacts=[Artifact("ela_heatmap.png", "image/png", b"\x89PNG fake")],
        )


@pytest.fixture
def analysed(client_a: Any, stored_media: Any, monkeypatch: pytest.MonkeyPatch) -> Analysis:
    monkeypatch.setattr(registry, "detectors", lambda *args, **kwargs: [_Heat()])
    analysis = services.analysis_run(analysis_id=services.analysis_create(media=stored_media(client_a)).pk)
    assert analysis is not None and analysis.status == AnalysisStatus.COMPLETED
    return analysis


def _key_client(user: Any, scopes: list[str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(user=user, name='t', scopes=scopes).plaintext}")
    return client


# --- media detail ---------------------------------------------------------------------------------------------
def test_media_detail_shows_the_latest_analysis_summary(api_as: Any, client_a: Any, analysed: Analysis) -> None:
    body = api_as(client_a).get(reverse("media-item", args=[analysed.media_id])).json()
    summary = body["analysis"]
    assert summary["id"] == str(analysed.pk) and summary["status"] == "completed"
    assert summary["trust_score"] == analysed.trust_score and summary["verdict"] == analysed.verdict
    assert summary["scoring_policy_version"] == 1 and summary["run_number"] == 1
    assert {"confidence", "manipulation_probability", "created_at", "finished_at"} <= set(summary)
    assert "detectors" not in summary


def test_media_detail_with_details_lists_detectors_with_short_lived_artifact_urls(
    api_as: Any, client_a: Any, analysed: Analysis
) -> None:
    body = api_as(client_a).get(reverse("media-item", args=[analysed.media_id]), {"include_details": "true"}).json()
    (detector,) = body["analysis"]["detectors"]
    assert detector["detector"] == "ela" and detector["version"] == "9" and detector["status"] == "ok"
    assert detector["score"] == pytest.approx(0.3) and detector["evidence"] == {"blocks": 4}
    assert detector["reasons"] == [{"code": "ela_uniform", "text": "Uniform.", "category": "info"}]
    (artifact,) = detector["artifacts"]
    assert artifact["name"] == "ela_heatmap.png"
    token = artifact["url"].rstrip("/").rsplit("/", 1)[-1]
    assert download_token_key(token).endswith("/artifacts/r1-ela-ela_heatmap.png")  # type: ignore[union-attr]
    assert "contributions" in body["analysis"]["breakdown"]


def test_media_detail_without_any_analysis_says_so(api_as: Any, client_a: Any, stored_media: Any) -> None:
    item = stored_media(client_a)
    assert api_as(client_a).get(reverse("media-item", args=[item.pk])).json()["analysis"] is None


# --- re-analysis ----------------------------------------------------------------------------------------------
def test_reanalysis_is_accepted_and_queued_on_the_batch_queue(
    api_as: Any, client_a: Any, analysed: Analysis, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        mock.patch.object(analyze_media_task, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_as(client_a).post(reverse("media-analyses", args=[analysed.media_id]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["run_number"] == 2 and body["queue"] == "batch"
    send.assert_called_once_with(args=[body["id"]], queue="batch")


def test_reanalysis_while_one_is_running_is_a_conflict(api_as: Any, client_a: Any, analysed: Analysis) -> None:
    client = api_as(client_a)
    with mock.patch.object(analyze_media_task, "apply_async"):
        assert client.post(reverse("media-analyses", args=[analysed.media_id])).status_code == 202
        response = client.post(reverse("media-analyses", args=[analysed.media_id]))
    assert response.status_code == 409
    assert response.json()["code"] == "analysis_in_progress"


def test_reanalysis_refuses_a_body(api_as: Any, client_a: Any, analysed: Analysis) -> None:
    response = api_as(client_a).post(
        reverse("media-analyses", args=[analysed.media_id]), {"queue": "interactive"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unexpected_fields"


def test_an_api_key_needs_media_write_to_reanalyse(client_a: Any, analysed: Analysis) -> None:
    reader = _key_client(client_a, ["media:read"])
    response = reader.post(reverse("media-analyses", args=[analysed.media_id]))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert reader.get(reverse("media-analyses", args=[analysed.media_id])).status_code == 200


# --- history and one analysis ---------------------------------------------------------------------------------
def test_history_lists_runs_newest_first_with_a_cursor(
    api_as: Any, client_a: Any, analysed: Analysis, django_assert_max_num_queries: Any
) -> None:
    for _ in range(2):
        rerun = services.analysis_create(media=analysed.media, queue="batch")
        Analysis.objects.filter(pk=rerun.pk).update(status=AnalysisStatus.COMPLETED)
    client = api_as(client_a)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("media-analyses", args=[analysed.media_id]), {"page_size": 2})
    body = response.json()
    assert [r["run_number"] for r in body["results"]] == [3, 2]
    assert body["next"]
    rest = client.get(body["next"]).json()
    assert [r["run_number"] for r in rest["results"]] == [1]


def test_one_analysis_has_detectors_breakdown_and_timings(
    api_as: Any, client_a: Any, analysed: Analysis, django_assert_max_num_queries: Any
) -> None:
    client = api_as(client_a)
    with django_assert_max_num_queries(4):
        body = client.get(reverse("analysis-detail", args=[analysed.pk])).json()
    assert body["id"] == str(analysed.pk)
    assert [d["detector"] for d in body["detectors"]] == ["ela"]
    assert body["breakdown"]["policy_version"] == 1
    assert body["timings"]["total_ms"] >= 0


@pytest.mark.parametrize("route", ["media-analyses-get", "media-analyses-post", "analysis-detail"])
def test_outsiders_get_404_everywhere(
    route: str, api_as: Any, outsider: Any, analysed: Analysis, django_capture_on_commit_callbacks: Any
) -> None:
    client = api_as(outsider)
    if route == "analysis-detail":
        response = client.get(reverse("analysis-detail", args=[analysed.pk]))
    elif route == "media-analyses-get":
        response = client.get(reverse("media-analyses", args=[analysed.media_id]))
    else:
        response = client.post(reverse("media-analyses", args=[analysed.media_id]))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Analysis.objects.filter(media=analysed.media).count() == 1


def test_unknown_ids_are_404(api_as: Any, client_a: Any) -> None:
    import uuid

    client = api_as(client_a)
    assert client.get(reverse("analysis-detail", args=[uuid.uuid4()])).status_code == 404
    assert client.post(reverse("media-analyses", args=[uuid.uuid4()])).status_code == 404


def test_anonymous_callers_are_refused(api: APIClient, analysed: Analysis) -> None:
    response = api.get(reverse("analysis-detail", args=[analysed.pk]))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
