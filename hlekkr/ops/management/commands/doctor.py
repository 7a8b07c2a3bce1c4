"""python manage.py doctor: the operations guide's Quick Diagnosis Checklist and per-issue diagnoses in one run.

Prints a table of OK / WARN / FAIL with the next step for each finding; exits 1 when anything FAILs.
`--json` prints only JSON on stdout (for machines); `--url` checks a running server over HTTP instead of an
in-process request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from hlekkr.ops import checks, selectors

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
DB_SLOW_MS = 100.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    next_step: str = ""


def _component(result: checks.ComponentStatus, next_step: str) -> Finding:
    if result.status == checks.OK:
        return Finding(result.name, OK, f"{result.detail} ({result.latency_ms} ms)")
    if result.status == checks.OFF:
        return Finding(result.name, SKIP, result.detail)
    return Finding(result.name, FAIL, result.detail, next_step)


class Doctor:
    def __init__(self, url: str | None = None):
        self.url = url

    # --- 1. the guide's system health check -----------------------------------------------------------
    def api(self) -> Finding:
        started = time.perf_counter()
        try:
            if self.url:
                import requests

                status = requests.get(self.url.rstrip("/") + "/health", timeout=10).status_code
                where = self.url
            else:
                from django.test import Client

                host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")), "")
                client = Client(HTTP_HOST=host or "localhost")
                status = client.get("/health", secure=bool(getattr(settings, "SECURE_SSL_REDIRECT", False))).status_code
                where = "in-process request"
        except Exception as exc:
            return Finding("api", FAIL, f"{type(exc).__name__}", "start the web process; check its log")
        ms = round((time.perf_counter() - started) * 1000, 1)
        if status != 200:
            return Finding(
                "api", FAIL, f"GET /health answered {status} ({where})", "check the web log and ALLOWED_HOSTS"
            )
        return Finding("api", OK, f"GET /health 200 in {ms} ms ({where})")

    def database(self) -> Finding:
        result = checks.check_database()
        finding = _component(result, "check DATABASE_URL, that PostgreSQL runs and accepts connections")
        if finding.status == OK and result.latency_ms > DB_SLOW_MS:
            return Finding(
                "database",
                WARN,
                f"round trip {result.latency_ms} ms (> {DB_SLOW_MS:g} ms)",
                "database slow: check load, locks (pg_stat_activity) and connection count",
            )
        return finding

    def migrations(self) -> Finding:
        from django.db.migrations.executor import MigrationExecutor

        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as exc:
            return Finding("migrations", FAIL, f"{type(exc).__name__}", "fix the database connection first")
        if plan:
            names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
            return Finding("migrations", FAIL, f"{len(plan)} unapplied: {names}", "run: python manage.py migrate")
        return Finding("migrations", OK, "all applied")

    def cache(self) -> Finding:
        return _component(checks.check_cache(), "check REDIS_URL and that Redis runs (redis-cli ping)")

    def broker(self) -> Finding:
        return _component(checks.check_broker(), "check CELERY_BROKER_URL and that the broker runs")

    def workers(self) -> Finding:
        result = checks.check_workers()
        queues = result.data.get("queues", {})
        if result.status == checks.OK:
            return Finding("workers", OK, result.detail)
        if result.status == checks.UNKNOWN:
            # A fresh install, or one that never ran a worker: nothing has failed yet, but nothing will be analysed.
            return Finding(
                "workers", WARN, result.detail, "start a worker: celery -A hlekkr worker -B (see deployment)"
            )
        if result.status == checks.DOWN and "queues" not in result.data:
            return Finding("workers", FAIL, result.detail, "fix the database connection first")
        never = [q for q, s in queues.items() if s["last_seen"] is None]
        stale = [q for q, s in queues.items() if s["last_seen"] is not None and not s["fresh"]]
        if stale:
            return Finding(
                "workers",
                FAIL,
                f"heartbeats stopped on: {', '.join(stale)}"
                + (f"; never seen on: {', '.join(never)}" if never else ""),
                "restart the workers for those queues; check `celery -A hlekkr inspect ping` and that beat runs",
            )
        return Finding(
            "workers",
            WARN,
            f"no worker has ever reported on: {', '.join(never)}",
            "start workers for those queues, or drop them from HLEKKR_WORKER_QUEUES",
        )

    def storage(self) -> Finding:
        return _component(
            checks.check_storage(),
            "check the bucket exists and the credentials may PutObject/GetObject/DeleteObject on it",
        )

    def libmagic(self) -> Finding:
        """Uploads are typed by their bytes through python-magic, which needs the system libmagic library."""
        hint = "install the system library: apt-get install libmagic1 (Debian/Ubuntu), brew install libmagic (macOS)"
        try:
            import magic

            sniffed = magic.from_buffer(PNG_SIGNATURE, mime=True)
        except (ImportError, OSError, AttributeError) as exc:  # the binding raises ImportError without the library
            return Finding("libmagic", FAIL, f"python-magic cannot load libmagic: {str(exc)[:120]}", hint)
        if sniffed != "image/png":
            return Finding("libmagic", FAIL, f"libmagic typed a PNG signature as {sniffed!r}", hint)
        return Finding("libmagic", OK, "libmagic types uploads by their bytes")

    def detectors(self) -> Finding:
        """This host's install (the detectors are imported here) and what the analysis workers report."""
        here, workers = checks.check_detectors(local=True), checks.check_detectors(local=False)
        fix = "fix the install (the worker log has the import error)"
        for result in (here, workers):
            if result.status == checks.DEGRADED:
                return Finding("detectors", WARN, result.detail, fix)
            if result.status != checks.OK:
                return _component(result, f"{fix}, or list the detector in HLEKKR_OPTIONAL_DETECTORS")
        return Finding("detectors", OK, f"this host: {here.detail}; {workers.detail}")

    def bedrock(self) -> Finding:
        models = checks.bedrock_models()
        if not models:
            return Finding("bedrock", SKIP, "not configured (local detectors only)")
        # Only here, and only when configured, does Hlekkr ask AWS anything outside an analysis.
        try:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "bedrock",
                region_name=settings.HLEKKR_BEDROCK_REGION,
                config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1}),
            )
            missing = []
            for model_id in models:
                try:
                    client.get_foundation_model(modelIdentifier=model_id)
                except client.exceptions.ResourceNotFoundException:
                    missing.append(model_id)
        except Exception as exc:
            return Finding(
                "bedrock", FAIL, f"{type(exc).__name__}", "check AWS credentials, region and bedrock:GetFoundationModel"
            )
        if missing:
            return Finding(
                "bedrock", FAIL, f"unknown models: {', '.join(missing)}", "fix HLEKKR_BEDROCK_MODELS or request access"
            )
        return Finding("bedrock", OK, f"{len(models)} model(s) reachable")

    def c2pa_trust_list(self) -> Finding:
        """The shipped C2PA trust lists age: signers join and leave, so an old copy trusts the wrong people."""
        from analysis import conf, trust_lists

        extra = conf.c2pa_trust_anchors_file()
        if not conf.c2pa_shipped_trust_list():
            if extra:
                return Finding("c2pa_trust_list", OK, f"shipped lists replaced by {extra}")
            return Finding(
                "c2pa_trust_list",
                WARN,
                "no C2PA trust anchors: every Content Credentials signer is reported untrusted",
                "set HLEKKR_C2PA_TRUST_ANCHORS_FILE or HLEKKR_C2PA_SHIPPED_TRUST_LIST=true",
            )
        age = trust_lists.shipped_age_days()
        detail = (
            f"shipped C2PA lists of {trust_lists.SHIPPED_DATE.isoformat()} ({age} days old, "
            f"{trust_lists.shipped_certificate_count()} anchors)" + (f" plus {extra}" if extra else "")
        )
        if age > trust_lists.MAX_AGE_DAYS:
            return Finding(
                "c2pa_trust_list",
                WARN,
                detail,
                "update analysis/trust_lists/ from c2pa-org/conformance-public (trust-list/) or point "
                "HLEKKR_C2PA_TRUST_ANCHORS_FILE at a current list",
            )
        return Finding("c2pa_trust_list", OK, detail)

    def jwt(self) -> Finding:
        """The guide's "Invalid JWT token" diagnosis: a token signed now verifies now with the configured key."""
        from rest_framework_simplejwt.tokens import AccessToken

        try:
            token = AccessToken()
            token["user_id"] = 0
            AccessToken(str(token))  # type: ignore[arg-type]  # simplejwt decodes a string
        except Exception as exc:
            return Finding("jwt", FAIL, f"{type(exc).__name__}", "check JWT_SIGNING_KEY (same value on every web node)")
        if settings.SIMPLE_JWT.get("SIGNING_KEY") == settings.SECRET_KEY:
            return Finding("jwt", WARN, "JWT signing key equals SECRET_KEY", "set a separate JWT_SIGNING_KEY")
        return Finding("jwt", OK, "tokens sign and verify with the configured key")

    # --- 2. the guide's per-issue diagnoses -----------------------------------------------------------
    def review_queue(self) -> Finding:
        snapshot = selectors.review_queue_snapshot()
        threshold = _threshold("review_queue_depth", 100)
        detail = (
            f"{snapshot['total']} awaiting decision ({snapshot['by_priority'].get('critical', 0)} critical), "
            f"{snapshot['sla_breaches']} past SLA"
        )
        if snapshot["total"] > threshold:
            return Finding(
                "review_queue", WARN, detail, "queue backlog: add moderators, check assignment runs, triage by priority"
            )
        if snapshot["sla_breaches"]:
            return Finding("review_queue", WARN, detail, "items past SLA: leads should reassign or take over")
        return Finding("review_queue", OK, detail)

    def stuck_analyses(self) -> Finding:
        count = selectors.stuck_analyses_count()
        if count:
            ids = ", ".join(selectors.stuck_analyses(limit=3))
            return Finding(
                "stuck_analyses",
                WARN,
                f"{count} running past {selectors.stuck_after()}: {ids}",
                "check worker logs for time limits; the reconciler re-enqueues them, or re-analyse by hand",
            )
        return Finding("stuck_analyses", OK, "none running past the time limit")

    def requests(self) -> Finding:
        window = selectors.request_window(minutes=5)
        if not window["count"]:
            return Finding("requests", OK, "no recorded traffic in the last 5 minutes")
        rate, p95 = window["error_rate_pct"] or 0.0, window["p95_ms"] or 0.0
        detail = f"{window['count']} requests, {rate:.2f} % 5xx, p95 {p95:.0f} ms (last 5 min)"
        if rate > _threshold("api_error_rate", 1.0) or p95 > _threshold("api_p95_latency", 500):
            return Finding("requests", WARN, detail, "read the web log (request ids) and the status page")
        return Finding("requests", OK, detail)

    def uploads(self) -> Finding:
        window = selectors.upload_window(minutes=60)
        if not window["attempts"]:
            return Finding("uploads", OK, "no uploads in the last hour")
        rate = window["success_rate_pct"] or 0.0
        detail = (
            f"{window['successes']} of {window['attempts']} uploads succeeded ({rate:.2f} %, last hour); "
            f"{window['refused']} files refused as invalid"
        )
        if rate < _threshold("upload_success_rate", 99.9):
            return Finding("uploads", WARN, detail, "check storage permissions and upload size limits; use multipart")
        return Finding("uploads", OK, detail)

    def rate_limits(self) -> Finding:
        refusals = selectors.ratelimit_refusals_last_hour()
        offenders = selectors.ratelimit_top_offenders(limit=3)
        detail = f"{refusals} refusals in the last hour" + (
            f"; top: {', '.join(selectors.format_offender(o) for o in offenders)}" if offenders else ""
        )
        if refusals > _threshold("ratelimit_refusals", 100):
            return Finding(
                "rate_limits",
                WARN,
                detail[:300],
                "raise the policy for legitimate keys in admin, or contact the client",
            )
        return Finding("rate_limits", OK, detail[:300])

    def webhooks(self) -> Finding:
        failures = selectors.webhook_failures_last_hour()
        if failures:
            return Finding(
                "webhooks", WARN, f"{failures} failed deliveries in the last hour", "check the endpoints in admin"
            )
        return Finding("webhooks", OK, "no failed deliveries in the last hour")

    def audit_chain(self) -> Finding:
        from hlekkr.audit.selectors import audit_chain_verify, audit_unsealed_overdue, unsealed_bound_seconds

        checked, broken = audit_chain_verify()
        if broken is not None:
            return Finding(
                "audit_chain",
                FAIL,
                f"broken at {broken} after {checked} rows",
                "treat as a security incident: preserve the database, compare with backups",
            )
        _, overdue = audit_unsealed_overdue()
        if overdue:
            return Finding(
                "audit_chain",
                FAIL,
                f"{overdue} events unsealed for over {unsealed_bound_seconds()} s ({checked} sealed rows verified)",
                "start celery beat and a maintenance worker (audit-seal), or run the sequencer by hand",
            )
        return Finding("audit_chain", OK, f"{checked} rows verified")

    def alerts(self) -> Finding:
        from hlekkr.ops.models import Alert, AlertStatus

        open_alerts = list(Alert.objects.filter(status=AlertStatus.OPEN).select_related("rule"))
        if open_alerts:
            return Finding(
                "alerts",
                WARN,
                "open: " + ", ".join(a.rule.kind for a in open_alerts),
                "follow docs/operations.md for each open alert",
            )
        return Finding("alerts", OK, "no open alerts")

    def run(self) -> list[Finding]:
        steps: list[Callable[[], Finding]] = [
            self.api,
            self.database,
            self.migrations,
            self.cache,
            self.broker,
            self.workers,
            self.storage,
            self.libmagic,
            self.detectors,
            self.bedrock,
            self.c2pa_trust_list,
            self.jwt,
            self.review_queue,
            self.stuck_analyses,
            self.requests,
            self.uploads,
            self.rate_limits,
            self.webhooks,
            self.audit_chain,
            self.alerts,
        ]
        findings = []
        for step in steps:
            try:
                findings.append(step())
            except Exception as exc:  # one broken check must not hide the others
                findings.append(Finding(step.__name__, FAIL, f"{type(exc).__name__}: {str(exc)[:150]}", "see above"))
        return findings


def _threshold(kind: str, default: float) -> float:
    from hlekkr.ops.models import AlertRule

    try:
        rule = AlertRule.objects.filter(kind=kind).first()
    except Exception:
        return default
    return rule.threshold if rule is not None else default


class Command(BaseCommand):
    help = "Diagnose a Hlekkr install: health, dependencies, queues, stuck work, rate limits, audit chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print only JSON on stdout")
        parser.add_argument("--url", help="check GET /health of a running server at this base URL")

    def handle(self, *args: Any, **options: Any) -> None:
        findings = Doctor(url=options.get("url")).run()
        failed = [f for f in findings if f.status == FAIL]
        if options["json"]:
            body = {"ok": not failed, "findings": [asdict(f) for f in findings]}
            self.stdout.write(json.dumps(body, indent=2))
        else:
            self._table(findings)
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(f.check for f in failed)}", returncode=1)

    def _table(self, findings: list[Finding]) -> None:
        styles: dict[str, Callable[[str], str]] = {
            OK: self.style.SUCCESS,
            WARN: self.style.WARNING,
            FAIL: self.style.ERROR,
            SKIP: str,
        }
        width = max(len(f.check) for f in findings)
        for f in findings:
            line = f"{styles[f.status](f.status.ljust(4))}  {f.check.ljust(width)}  {f.detail}"
            self.stdout.write(line)
            if f.next_step:
                self.stdout.write(f"{'':4}  {'':{width}}  -> {f.next_step}")
        counts = {s: sum(1 for f in findings if f.status == s) for s in (OK, WARN, FAIL, SKIP)}
        self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
