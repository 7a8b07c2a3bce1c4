"""GET /metrics: never public; Prometheus text with per-route latency and the database-derived gauges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import (
    AnalysisFactory,
    BedrockCallFactory,
    DetectorResultFactory,
    RateLimitHitFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
    make_analysis,
    make_item,
)

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client: Any) -> dict[str, Any]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def samples(family: Any, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if name is None or s.name == name}


@pytest.fixture
def token(settings: Any) -> str:
    settings.HLEKKR_METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_do_not_exist_when_nothing_is_configured(client: Any, settings: Any) -> None:
    settings.HLEKKR_METRICS_TOKEN = ""
    settings.HLEKKR_METRICS_ALLOWED_NETWORKS = []
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_anonymous_scrapes_are_refused(client: Any, token: str) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_refused(client: Any, token: str) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_user_jwt_is_not_a_metrics_token(api_as: Any, lead: Any, token: str) -> None:
    response = api_as(lead).get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_token_opens_the_metrics(client: Any, token: str) -> None:
    families = scrape(client)
    assert "hlekkr_http_request_duration_seconds" in families
    assert "hlekkr_analyses" in families


def test_an_allowed_network_scrapes_without_a_token(client: Any, settings: Any) -> None:
    settings.HLEKKR_METRICS_TOKEN = ""
    settings.HLEKKR_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    outside = client.get("/metrics", REMOTE_ADDR="192.168.1.1")
    assert outside.status_code == 401
    assert outside.json()["code"] == "not_authenticated"


def test_a_forged_forwarded_for_header_does_not_pass_the_network_check(client: Any, settings: Any) -> None:
    settings.HLEKKR_METRICS_TOKEN = ""
    settings.HLEKKR_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_latency_is_labelled_by_route_pattern_not_raw_path(client: Any, token: str) -> None:
    import uuid

    for _ in range(2):
        client.get(f"/api/v1/media/{uuid.uuid4()}/")  # two different ids, one route
    client.get("/no/such/path/here")
    families = scrape(client)
    counts = samples(families["hlekkr_http_request_duration_seconds"], "hlekkr_http_request_duration_seconds_count")
    routes = {dict(labels)["route"] for labels in counts}
    assert not any(str(r).count("-") >= 4 for r in routes), routes  # no UUIDs in labels
    assert "<unmatched>" in routes
    requests = samples(families["hlekkr_http_requests"], "hlekkr_http_requests_total")
    assert any(dict(labels)["status_class"] == "4xx" for labels in requests)


def test_health_probes_and_scrapes_are_not_counted_as_traffic(client: Any, token: str) -> None:
    from hlekkr.ops.stats import request_stats

    client.get("/health")
    client.get("/health/ready")
    scrape(client)
    assert request_stats.pending_count() == 0


def test_analyses_by_status_and_stuck(client: Any, token: str, make_analysis: Any) -> None:
    make_analysis(status="completed", finished_at=timezone.now())
    make_analysis(status="running", started_at=timezone.now() - timedelta(hours=2))
    make_analysis(status="queued")
    families = scrape(client)
    by_status = {dict(k)["status"]: v for k, v in samples(families["hlekkr_analyses"]).items()}
    assert by_status == {"completed": 1, "running": 1, "queued": 1}
    assert samples(families["hlekkr_analyses_stuck"])[()] == 1
    finished = {dict(k)["status"]: v for k, v in samples(families["hlekkr_analyses_finished_last_hour"]).items()}
    assert finished == {"completed": 1}


def test_detector_duration_and_errors_per_detector(client: Any, token: str, make_analysis: Any) -> None:
    from analysis.models import DetectorResult

    analysis = make_analysis(status="completed")
    DetectorResult.objects.create(analysis=analysis, detector="ela", detector_version="1", status="ok", duration_ms=400)
    DetectorResult.objects.create(
        analysis=analysis, detector="jpeg", detector_version="1", status="error", duration_ms=100
    )
    other = make_analysis(status="completed")
    DetectorResult.objects.create(analysis=other, detector="ela", detector_version="1", status="ok", duration_ms=200)
    families = scrape(client)
    avg = {dict(k)["detector"]: v for k, v in samples(families["hlekkr_detector_duration_seconds_avg"]).items()}
    assert avg == {"ela": pytest.approx(0.3), "jpeg": pytest.approx(0.1)}
    errors = {dict(k)["detector"]: v for k, v in samples(families["hlekkr_detector_errors_last_hour"]).items()}
    assert errors == {"ela": 0, "jpeg": 1}


def test_review_queue_depth_by_priority_and_sla_breaches(client: Any, token: str, client_a: Any) -> None:
    make_item(client_a, priority="critical", due_in=timedelta(minutes=-1))
    for _ in range(4):
        make_item(client_a, priority="high")
    families = scrape(client)
    depth = {dict(k)["priority"]: v for k, v in samples(families["hlekkr_review_queue_depth"]).items()}
    assert depth["critical"] == 1 and depth["high"] == 4
    breaches = {dict(k)["priority"]: v for k, v in samples(families["hlekkr_review_sla_breaches"]).items()}
    assert breaches["critical"] == 1


def test_upload_outcomes_are_classified_by_route_and_status() -> None:
    from hlekkr.ops.metrics import is_upload, upload_outcome

    assert is_upload("api/v1/media/", "POST")
    assert is_upload("api/v1/media/uploads/<uuid:pk>/complete/", "POST")
    assert not is_upload("api/v1/media/", "GET")
    assert not is_upload("api/v1/media/<uuid:pk>/analyses/", "POST")
    assert upload_outcome(201) == "success"
    assert upload_outcome(415) == "refused"
    assert upload_outcome(503) == "failure"
    assert upload_outcome(429) is None


def test_rate_limit_refusals_webhook_failures_and_bedrock_usage_are_exposed(
    client: Any, token: str, client_a: Any
) -> None:
    RateLimitHitFactory(refused=40)
    RateLimitHitFactory(refused=2)
    endpoint = WebhookEndpointFactory(owner=client_a)
    for status in ("succeeded", "succeeded", "succeeded", "failed", "failed"):
        WebhookDeliveryFactory(endpoint=endpoint, status=status)
    analysis = make_analysis(client_a)
    for i in range(9):
        DetectorResultFactory(analysis=AnalysisFactory(media=analysis.media, run_number=i + 2), detector="bedrock",
                              status="error" if i == 0 else "ok")  # fmt: skip
    BedrockCallFactory(cost_usd="0.40")
    BedrockCallFactory(cost_usd="0.02")
    families = scrape(client)
    assert samples(families["hlekkr_ratelimit_refusals_last_hour"])[()] == 42
    webhooks = {dict(k)["status"]: v for k, v in samples(families["hlekkr_webhook_deliveries_last_hour"]).items()}
    assert webhooks == {"succeeded": 3, "failed": 2}
    assert samples(families["hlekkr_bedrock_calls_last_day"])[()] == 9
    assert samples(families["hlekkr_bedrock_errors_last_day"])[()] == 1
    assert samples(families["hlekkr_bedrock_spend_usd_last_day"])[()] == pytest.approx(0.42)


def test_bedrock_calls_are_counted_from_detector_results(make_analysis: Any) -> None:
    from analysis.models import DetectorResult
    from hlekkr.ops.selectors import bedrock_usage_last_day

    analysis = make_analysis(status="completed")
    DetectorResult.objects.create(analysis=analysis, detector="bedrock", detector_version="1", status="error")
    usage = bedrock_usage_last_day()
    assert usage["calls"] == 1 and usage["errors"] == 1


def test_bedrock_spend_is_summed_from_the_recorded_calls_of_the_last_day(db: Any) -> None:
    import uuid
    from decimal import Decimal

    from analysis.models import BedrockCall
    from hlekkr.ops.selectors import bedrock_usage_last_day

    run = uuid.uuid4()
    for sequence, cost in enumerate(("0.25", "0.125")):
        BedrockCall.objects.create(run_id=run, sequence=sequence, model_id="m", outcome="ok", cost_usd=Decimal(cost))
    old = BedrockCall.objects.create(run_id=run, sequence=9, model_id="m", outcome="ok", cost_usd=Decimal("5"))
    BedrockCall.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    assert bedrock_usage_last_day()["spend_usd"] == 0.375


def test_one_failing_family_does_not_blank_the_scrape(client: Any, token: str) -> None:
    with mock.patch("hlekkr.ops.selectors.review_queue_snapshot", side_effect=RuntimeError("table missing")):
        families = scrape(client)
    assert "hlekkr_analyses" in families
    assert "hlekkr_review_queue_depth" not in families


def test_a_scrape_costs_a_bounded_number_of_queries(
    client: Any, token: str, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(25):
        scrape(client)


def test_multiprocess_mode_aggregates_from_the_shared_directory(
    client: Any, token: str, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    families = scrape(client)
    assert "hlekkr_analyses" in families  # database gauges are rendered whatever the process mode


def test_webhook_failures_are_read_from_the_webhooks_app(client_a: Any) -> None:
    import uuid

    from hlekkr.ops.selectors import webhook_deliveries_by_status, webhook_failures_last_hour
    from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(owner=client_a, url="https://example.org/hook", secret="s" * 32)
    now = timezone.now()
    for status in ("succeeded", "failed", "given_up"):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event="analysis.completed", event_id=uuid.uuid4(), status=status,
            next_attempt_at=now, expires_at=now + timedelta(hours=24), last_attempt_at=now,
        )  # fmt: skip
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="analysis.completed", event_id=uuid.uuid4(), status="failed",
        next_attempt_at=now, expires_at=now, last_attempt_at=now - timedelta(hours=3),
    )  # fmt: skip
    assert webhook_deliveries_by_status() == {"succeeded": 1, "failed": 1, "given_up": 1}
    assert webhook_failures_last_hour() == 2


# --- several gunicorn workers (PROMETHEUS_MULTIPROC_DIR) ---------------------------------------------------------
def test_multiprocess_scrapes_keep_the_answering_process_metrics(
    client: Any, token: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    families = scrape(client)
    assert "process_resident_memory_bytes" in families
    assert "process_cpu_seconds" in families
    assert "python_info" in families
    assert "hlekkr_analyses" in families  # and the database gauges still follow


def _gunicorn_config() -> Any:
    import runpy
    from pathlib import Path

    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "hlekkr" / "gunicorn.conf.py"))


def test_gunicorn_removes_a_dead_workers_live_gauge_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = _gunicorn_config()
    for name in ("gauge_livesum_4242.db", "gauge_liveall_4242.db", "counter_4242.db", "gauge_livesum_77.db"):
        (tmp_path / name).write_bytes(b"")
    config["child_exit"](None, mock.Mock(pid=4242))
    # Counters of the dead worker stay (their totals must not go backwards); its live gauges go.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "gauge_livesum_77.db"]


def test_gunicorn_starts_with_an_empty_multiprocess_directory(tmp_path, monkeypatch) -> None:
    directory = tmp_path / "prom"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    config = _gunicorn_config()
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"stale")
    config["on_starting"](None)
    assert directory.is_dir() and list(directory.iterdir()) == []


def test_gunicorn_hooks_do_nothing_without_a_multiprocess_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    config = _gunicorn_config()
    config["on_starting"](None)
    config["child_exit"](None, mock.Mock(pid=1))
