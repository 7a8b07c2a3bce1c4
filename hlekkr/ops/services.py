"""Writes of the ops app: heartbeats, queue samples, alerts (opened and resolved with an audit entry)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.ops import alerts as alert_rules
from hlekkr.ops import notify, selectors
from hlekkr.ops.models import (
    Alert,
    AlertRule,
    AlertStatus,
    QueueDepthSample,
    RequestMinute,
    WorkerHeartbeat,
)

logger = logging.getLogger(__name__)
MAX_NOTIFY_ATTEMPTS = 3


def heartbeat_record(
    *, hostname: str, queues: list[str], at: datetime | None = None, detector_errors: dict[str, str] | None = None
) -> int:
    """Mark `hostname` alive on each queue (one row per worker and queue, updated in place), with the required
    detectors it could not load when it reports them."""
    at = at or timezone.now()
    defaults: dict[str, Any] = {"last_seen": at}
    if detector_errors is not None:
        defaults["detector_errors"] = detector_errors
    for queue in queues:
        WorkerHeartbeat.objects.update_or_create(hostname=hostname[:255], queue=queue[:32], defaults=defaults)
    return len(queues)


def queue_depth_sample_record(*, at: datetime | None = None) -> QueueDepthSample:
    """Sample the review queue."""
    snapshot = selectors.review_queue_snapshot()
    return QueueDepthSample.objects.create(
        sampled_at=at or timezone.now(),
        total=snapshot["total"],
        by_priority=snapshot["by_priority"],
        sla_breaches=snapshot["sla_breaches"],
    )


_RULE_FIELDS = ("enabled", "comparison", "threshold", "window_minutes", "periods", "min_count", "description")


def alert_rule_save(*, rule: AlertRule, actor: User | None) -> AlertRule:
    """Save an admin's edit of a rule's threshold or window, audited with its values before and after."""
    with transaction.atomic():
        old = AlertRule.objects.select_for_update().filter(pk=rule.pk).first() if rule.pk else None
        before = model_to_dict(old, fields=_RULE_FIELDS) if old is not None else None
        rule.save()
        audit_record(
            actor=actor,
            action="alert_rule.updated",
            target=rule,
            payload={"kind": rule.kind, "before": before, "after": model_to_dict(rule, fields=_RULE_FIELDS)},
        )
    return rule


def alert_open(*, rule: AlertRule, value: float | None, message: str) -> tuple[Alert, bool]:
    """Open an alert for `rule`, or refresh the one already open; (alert, opened_now). Audited when opened."""
    with transaction.atomic():
        existing = Alert.objects.select_for_update().filter(rule=rule, status=AlertStatus.OPEN).first()
        if existing is not None:
            existing.last_value = value
            existing.save(update_fields=["last_value"])
            return existing, False
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule, opened_at=timezone.now(), value=value, last_value=value, message=message[:500]
                )
        except IntegrityError:
            # A concurrent evaluation opened it first (the partial unique constraint); use that one.
            return Alert.objects.get(rule=rule, status=AlertStatus.OPEN), False
        audit_record(
            actor=None,
            action="alert.opened",
            target=alert,
            payload={"rule": rule.kind, "value": value, "message": message},
        )
    return alert, True


def alert_resolve(*, alert: Alert, value: float | None) -> Alert:
    """Resolve an open alert (a conditional UPDATE, so two evaluators cannot both resolve it). Audited."""
    with transaction.atomic():
        now = timezone.now()
        changed = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
            status=AlertStatus.RESOLVED, resolved_at=now, last_value=value
        )
        alert.refresh_from_db()
        if changed:
            audit_record(
                actor=None, action="alert.resolved", target=alert, payload={"rule": alert.rule.kind, "value": value}
            )
    return alert


def _notify(alert: Alert, event: str) -> None:
    """Send once per transition: `notified_at` / `resolved_notified_at` mark success; failures retry on the next
    evaluations up to MAX_NOTIFY_ATTEMPTS, then stop (the alert is still on the status page and in metrics)."""
    now = timezone.now()
    if event == "alert.opened":
        # Claim this attempt (conditional UPDATE on the attempt count): a concurrent evaluator holding the same
        # snapshot finds it taken. A worker killed after the claim has used one attempt; the next evaluation retries.
        claimed = Alert.objects.filter(
            pk=alert.pk, notified_at__isnull=True, notify_attempts=alert.notify_attempts
        ).update(notify_attempts=alert.notify_attempts + 1)
        if not claimed:
            return
        errors = notify.send(alert, event)
        fields: dict[str, Any] = {"notification_error": "; ".join(errors)[:500]}
        if not errors:
            fields["notified_at"] = now
        Alert.objects.filter(pk=alert.pk).update(**fields)
    else:
        # Claim the one resolution notice first (conditional UPDATE): an evaluator that runs concurrently, or a
        # redelivered evaluation task, finds it taken and sends nothing. A resolution notice is never retried.
        if not Alert.objects.filter(pk=alert.pk, resolved_notified_at__isnull=True).update(resolved_notified_at=now):
            return
        errors = notify.send(alert, event)
        Alert.objects.filter(pk=alert.pk).update(notification_error="; ".join(errors)[:500])


@dataclass
class EvaluationReport:
    opened: list[str]
    resolved: list[str]
    still_open: list[str]


def alerts_evaluate(*, now: datetime | None = None) -> EvaluationReport:
    """Evaluate every enabled rule; open, refresh or resolve its alert; notify on transitions only."""
    report = EvaluationReport([], [], [])
    for rule in AlertRule.objects.filter(enabled=True):
        try:
            evaluation = alert_rules.evaluate(rule, now)
        except Exception:
            logger.exception("alert rule %s could not be evaluated", rule.kind)
            continue
        if evaluation.firing:
            alert, opened = alert_open(rule=rule, value=evaluation.value, message=evaluation.message)
            (report.opened if opened else report.still_open).append(rule.kind)
            if alert.notified_at is None and alert.notify_attempts < MAX_NOTIFY_ATTEMPTS:
                _notify(alert, "alert.opened")
        else:
            open_alert = Alert.objects.filter(rule=rule, status=AlertStatus.OPEN).first()
            if open_alert is not None:
                resolved = alert_resolve(alert=open_alert, value=evaluation.value)
                report.resolved.append(rule.kind)
                if resolved.notified_at is not None:  # only tell people about a resolution they heard opening
                    _notify(resolved, "alert.resolved")
    return report


def ops_records_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Retention: request stats 14 days, queue samples 30 days, heartbeats of workers gone for 7 days."""
    now = now or timezone.now()
    return {
        "request_minutes": RequestMinute.objects.filter(minute__lt=now - timedelta(days=14)).delete()[0],
        "queue_samples": QueueDepthSample.objects.filter(sampled_at__lt=now - timedelta(days=30)).delete()[0],
        "heartbeats": WorkerHeartbeat.objects.filter(last_seen__lt=now - timedelta(days=7)).delete()[0],
    }
