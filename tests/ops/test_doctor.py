"""manage.py doctor: the checklist in one command; non-zero on FAIL; --json is only JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from hlekkr.ops import checks
from hlekkr.ops.models import WorkerHeartbeat
from tests.factories import RateLimitHitFactory
from tests.ops.conftest import audit_tampering

pytestmark = pytest.mark.django_db


def doctor(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def findings(output: str) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in json.loads(output)["findings"]}


def test_a_healthy_install_passes_and_names_every_check() -> None:
    code, out = doctor("--json")
    assert code == 0
    found = findings(out)
    assert set(found) >= {
        "api", "database", "migrations", "cache", "broker", "workers", "storage", "libmagic", "bedrock", "jwt",
        "review_queue", "stuck_analyses", "requests", "uploads", "rate_limits", "webhooks", "audit_chain", "alerts",
    }  # fmt: skip
    assert found["api"]["status"] == "OK"
    assert found["bedrock"]["status"] == "SKIP"


def test_no_worker_ever_seen_is_a_warning_not_a_failure() -> None:
    code, out = doctor("--json")
    assert code == 0
    assert findings(out)["workers"]["status"] == "WARN"
    assert "start a worker" in findings(out)["workers"]["next_step"]


def test_workers_whose_heartbeats_stopped_fail() -> None:
    for queue in checks.DEFAULT_WORKER_QUEUES:
        WorkerHeartbeat.objects.create(hostname="w1", queue=queue, last_seen=timezone.now() - timedelta(minutes=10))
    code, out = doctor("--json")
    assert code == 1
    assert findings(out)["workers"]["status"] == "FAIL"


def test_fresh_heartbeats_on_every_queue_are_ok() -> None:
    for queue in checks.DEFAULT_WORKER_QUEUES:
        WorkerHeartbeat.objects.create(hostname="w1", queue=queue, last_seen=timezone.now())
    _, out = doctor("--json")
    assert findings(out)["workers"]["status"] == "OK"


def test_broken_storage_fails_with_a_next_step() -> None:
    with mock.patch("django.core.files.storage.default_storage.save", side_effect=PermissionError("AccessDenied")):
        code, out = doctor("--json")
    assert code == 1
    storage = findings(out)["storage"]
    assert storage["status"] == "FAIL" and "PermissionError" in storage["detail"]
    assert "bucket" in storage["next_step"]


def test_a_missing_libmagic_fails_with_the_install_step() -> None:
    with mock.patch("magic.from_buffer", side_effect=ImportError("failed to find libmagic")):
        code, out = doctor("--json")
    assert code != 0
    found = findings(out)["libmagic"]
    assert found["status"] == "FAIL" and "libmagic1" in found["next_step"]


def test_an_unreachable_broker_fails() -> None:
    with mock.patch("hlekkr.ops.checks.broker_url", return_value="redis://127.0.0.1:1/0"):
        code, out = doctor("--json")
    assert code == 1
    assert findings(out)["broker"]["status"] == "FAIL"


def test_unapplied_migrations_fail() -> None:
    fake = [(mock.Mock(app_label="media", name="0099_future"), False)]
    fake[0][0].name = "0099_future"
    with mock.patch("django.db.migrations.executor.MigrationExecutor.migration_plan", return_value=fake):
        code, out = doctor("--json")
    assert code == 1
    migrations = findings(out)["migrations"]
    assert migrations["status"] == "FAIL" and "media.0099_future" in migrations["detail"]
    assert "migrate" in migrations["next_step"]


def test_a_broken_audit_chain_fails() -> None:
    from hlekkr.audit.models import AuditEvent
    from hlekkr.audit.services import audit_record, audit_seal_pending

    for n in range(3):
        audit_record(actor=None, action="test.event", payload={"n": n})
    audit_seal_pending()
    with audit_tampering():
        AuditEvent.objects.filter(sequence=2).update(payload={"n": 99})
    code, out = doctor("--json")
    assert code == 1
    assert "row #2" in findings(out)["audit_chain"]["detail"]


def test_events_left_unsealed_beyond_the_bound_fail(settings: Any) -> None:
    from hlekkr.audit.services import audit_record

    audit_record(actor=None, action="test.event")
    settings.HLEKKR_AUDIT_UNSEALED_BOUND_SECONDS = 0
    code, out = doctor("--json")
    assert code == 1
    assert "unsealed" in findings(out)["audit_chain"]["detail"]


def test_stuck_analyses_and_open_alerts_warn(make_analysis: Any) -> None:
    from hlekkr.ops.models import Alert, AlertRule

    make_analysis(status="running", started_at=timezone.now() - timedelta(hours=1))
    Alert.objects.create(rule=AlertRule.objects.get(kind="api_error_rate"), opened_at=timezone.now(), message="x")
    code, out = doctor("--json")
    assert code == 0
    assert findings(out)["stuck_analyses"]["status"] == "WARN"
    assert findings(out)["alerts"]["status"] == "WARN"


def test_keys_hitting_rate_limits_are_listed() -> None:
    RateLimitHitFactory(key="ip:203.0.113.9", refused=480)
    RateLimitHitFactory(key="ip:198.51.100.7", refused=20)
    _, out = doctor("--json")
    rate_limits = findings(out)["rate_limits"]
    assert rate_limits["status"] == "WARN" and "ip:203.0.113.9 (480 refused)" in rate_limits["detail"]


def test_bedrock_when_configured_asks_aws_for_each_model(settings: Any) -> None:
    settings.HLEKKR_BEDROCK_MODELS = '[{"model_id": "model-a"}, {"model_id": "model-b"}]'
    client = mock.Mock()
    client.exceptions.ResourceNotFoundException = type("ResourceNotFoundException", (Exception,), {})
    client.get_foundation_model.side_effect = [{}, client.exceptions.ResourceNotFoundException()]
    with mock.patch("boto3.client", return_value=client):
        code, out = doctor("--json")
    assert code == 1
    assert "model-b" in findings(out)["bedrock"]["detail"]
    assert client.get_foundation_model.call_count == 2


def test_the_table_shows_status_and_next_steps() -> None:
    with mock.patch("hlekkr.ops.checks.broker_url", return_value="redis://127.0.0.1:1/0"):
        code, out = doctor()
    assert code == 1
    assert "FAIL  broker" in out
    assert "-> check CELERY_BROKER_URL" in out
    assert "OK    database" in out


def test_json_output_is_only_json() -> None:
    _, out = doctor("--json")
    body = json.loads(out)
    assert body["ok"] is True


def test_url_mode_checks_a_running_server_over_http(live_server: Any) -> None:
    _, out = doctor("--json", "--url", live_server.url)
    assert findings(out)["api"]["status"] == "OK"
    assert live_server.url in findings(out)["api"]["detail"]


def test_the_shipped_c2pa_trust_list_is_reported_with_its_date() -> None:
    from analysis import trust_lists

    with mock.patch.object(trust_lists, "shipped_age_days", return_value=30):
        found = findings(doctor("--json")[1])["c2pa_trust_list"]
    assert found["status"] == "OK"
    assert trust_lists.SHIPPED_DATE.isoformat() in found["detail"] and "52 anchors" in found["detail"]


def test_a_shipped_c2pa_trust_list_older_than_180_days_is_a_warning() -> None:
    from analysis import trust_lists

    with mock.patch.object(trust_lists, "shipped_age_days", return_value=181):
        code, out = doctor("--json")
    assert code == 0
    assert findings(out)["c2pa_trust_list"]["status"] == "WARN"
    assert "conformance-public" in findings(out)["c2pa_trust_list"]["next_step"]


def test_no_trust_anchors_at_all_is_a_warning(settings: Any) -> None:
    settings.HLEKKR_C2PA_SHIPPED_TRUST_LIST = False
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = ""
    assert findings(doctor("--json")[1])["c2pa_trust_list"]["status"] == "WARN"
