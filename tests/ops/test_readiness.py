"""GET /health and /health/ready: each component, each failure mode, no secrets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from hlekkr.ops import checks
from hlekkr.ops.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def ready(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/health/ready")
    return response.status_code, response.json()


def fresh_heartbeats() -> None:
    for queue in checks.DEFAULT_WORKER_QUEUES:
        WorkerHeartbeat.objects.create(hostname="w1", queue=queue, last_seen=timezone.now())


def test_liveness_answers_without_touching_dependencies(client: Any) -> None:
    with mock.patch.object(connection, "ensure_connection", side_effect=OperationalError("down")):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_healthy_install_is_ready_and_names_every_component(client: Any) -> None:
    fresh_heartbeats()
    status, body = ready(client)
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "cache", "broker", "storage", "workers", "detectors", "bedrock"}
    for name in ("database", "cache", "broker", "storage", "workers"):
        component = body["components"][name]
        assert component["status"] == "ok", (name, component)
        assert isinstance(component["latency_ms"], float)
        assert component["detail"]
    assert body["components"]["bedrock"]["status"] == "off"


def test_it_is_not_ready_when_the_database_is_down(client: Any) -> None:
    with mock.patch.object(connection, "ensure_connection", side_effect=OperationalError("connection refused")):
        status, body = ready(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["components"]["database"]["status"] == "down"
    assert "OperationalError" in body["components"]["database"]["detail"]


def test_it_is_not_ready_when_the_cache_is_unreachable(client: Any, settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://:hunter2@127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    status, body = ready(client)
    assert status == 503
    assert body["components"]["cache"]["status"] == "down"
    assert "hunter2" not in str(body)


def test_it_is_not_ready_when_the_cache_loses_writes(client: Any) -> None:
    with mock.patch("hlekkr.ops.checks.cache.get", return_value=None):
        status, body = ready(client)
    assert status == 503
    assert "could not be read back" in body["components"]["cache"]["detail"]


def test_it_is_not_ready_when_the_broker_is_unreachable_and_hides_its_password(client: Any) -> None:
    with mock.patch("hlekkr.ops.checks.broker_url", return_value="redis://:s3cr3t-pw@127.0.0.1:1/0"):
        status, body = ready(client)
    assert status == 503
    assert body["components"]["broker"]["status"] == "down"
    assert "s3cr3t-pw" not in str(body)


def test_the_embedded_broker_is_down_when_its_folder_is_missing(client: Any, settings: Any, tmp_path: Any) -> None:
    missing = str(tmp_path / "gone")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": missing, "data_folder_out": missing}
    with mock.patch("hlekkr.ops.checks.broker_url", return_value="filesystem://"):
        status, body = ready(client)
    assert status == 503
    assert "not writable" in body["components"]["broker"]["detail"]


def test_the_embedded_broker_is_up_when_its_folders_are_writable(client: Any, settings: Any, tmp_path: Any) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    with mock.patch("hlekkr.ops.checks.broker_url", return_value="filesystem://"):
        status, body = ready(client)
    assert status == 200
    assert body["components"]["broker"]["status"] == "ok"


def test_it_is_not_ready_when_storage_is_unreachable(client: Any, settings: Any) -> None:
    from botocore.config import Config

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "nowhere",
                "endpoint_url": "http://127.0.0.1:1",
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "client_config": Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
            },
        },
    }
    status, body = ready(client)
    assert status == 503
    assert body["components"]["storage"]["status"] == "down"
    assert "testing" not in body["components"]["storage"]["detail"]


def test_storage_is_probed_with_a_real_write_read_and_delete(client: Any, settings: Any) -> None:
    from django.core.files.storage import default_storage

    _status, body = ready(client)
    assert body["components"]["storage"]["status"] == "ok"
    assert not default_storage.exists("_ops") or default_storage.listdir("_ops")[1] == []


def test_readiness_probes_storage_at_most_once_per_ttl(client: Any, settings: Any) -> None:
    from django.core.files.storage import default_storage

    settings.HLEKKR_READINESS_STORAGE_TTL = 15
    with mock.patch.object(default_storage, "save", wraps=default_storage.save) as save:
        details = [ready(client)[1]["components"]["storage"] for _ in range(3)]
    assert save.call_count == 1
    assert {d["status"] for d in details} == {"ok"}
    assert "probed" in details[-1]["detail"]


def test_a_storage_probe_older_than_the_ttl_is_repeated(client: Any, settings: Any) -> None:
    from django.core.files.storage import default_storage

    settings.HLEKKR_READINESS_STORAGE_TTL = 0
    with mock.patch.object(default_storage, "save", wraps=default_storage.save) as save:
        for _ in range(2):
            ready(client)
    assert save.call_count == 2


def test_a_failing_storage_is_remembered_too_so_an_outage_is_not_hammered(client: Any, settings: Any) -> None:
    from django.core.files.storage import default_storage

    settings.HLEKKR_READINESS_STORAGE_TTL = 15
    with mock.patch.object(default_storage, "save", side_effect=OSError("disk gone")) as save:
        assert ready(client)[0] == 503
        assert ready(client)[0] == 503
    assert save.call_count == 1


@pytest.mark.s3
def test_storage_probe_works_against_s3(client: Any, s3_storage: Any) -> None:
    fresh_heartbeats()
    status, body = ready(client)
    assert status == 200, body
    assert "S3Storage" in body["components"]["storage"]["detail"]


def test_missing_workers_are_reported_but_do_not_make_the_node_unready(client: Any) -> None:
    status, body = ready(client)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["components"]["workers"]["status"] == "unknown"
    assert body["components"]["workers"]["required"] is False


def test_stale_heartbeats_mark_workers_down(client: Any) -> None:
    old = timezone.now() - timedelta(minutes=3)
    for queue in checks.DEFAULT_WORKER_QUEUES:
        WorkerHeartbeat.objects.create(hostname="w1", queue=queue, last_seen=old)
    status, body = ready(client)
    assert status == 200
    assert body["components"]["workers"]["status"] == "down"


def test_a_queue_without_a_fresh_heartbeat_degrades_workers(client: Any) -> None:
    fresh_heartbeats()
    WorkerHeartbeat.objects.filter(queue="bedrock").update(last_seen=timezone.now() - timedelta(minutes=5))
    _, body = ready(client)
    workers = body["components"]["workers"]
    assert workers["status"] == "degraded"
    assert "bedrock" in workers["detail"]


def test_bedrock_reports_configuration_without_calling_aws(client: Any, settings: Any) -> None:
    settings.HLEKKR_BEDROCK_MODELS = '[{"model_id": "anthropic.claude-3-haiku-20240307-v1:0"}]'
    with mock.patch("boto3.client", side_effect=AssertionError("readiness must not call AWS")):
        _, body = ready(client)
    assert body["components"]["bedrock"]["status"] == "ok"
    assert "1 model" in body["components"]["bedrock"]["detail"]


def test_readiness_shows_no_secrets(client: Any, settings: Any) -> None:
    fresh_heartbeats()
    text = client.get("/health/ready").content.decode().lower()
    for word in ("password", "secret_key", "aws_secret", settings.SECRET_KEY.lower()):
        assert word not in text
