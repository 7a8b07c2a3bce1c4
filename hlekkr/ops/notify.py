"""Alert notifications: email to settings.ALERT_EMAILS and a JSON POST to settings.HLEKKR_ALERT_WEBHOOK_URL."""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail

from hlekkr.ops.models import Alert

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 5


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    return {
        "event": event,  # alert.opened | alert.resolved
        "alert_id": alert.pk,
        "rule": alert.rule.kind,
        "status": alert.status,
        "threshold": alert.rule.threshold,
        "value": alert.last_value if event == "alert.resolved" else alert.value,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def send(alert: Alert, event: str) -> list[str]:
    """Send on every configured channel; returns the errors (empty when all succeeded or none is configured)."""
    errors: list[str] = []
    payload = alert_payload(alert, event)
    recipients = list(getattr(settings, "ALERT_EMAILS", []) or [])
    if recipients:
        verb = "OPEN" if event == "alert.opened" else "RESOLVED"
        subject = f"[Hlekkr {verb}] {alert.rule.get_kind_display()}"
        body = f"{alert.message}\n\nrule: {alert.rule}\nopened: {payload['opened_at']}\n"
        if payload["resolved_at"]:
            body += f"resolved: {payload['resolved_at']}\n"
        try:
            send_mail(subject, body, None, recipients, fail_silently=False)
        except Exception as exc:
            logger.warning("alert email failed: %s", type(exc).__name__)
            errors.append(f"email: {type(exc).__name__}")
    url = getattr(settings, "HLEKKR_ALERT_WEBHOOK_URL", "")
    if url:
        try:
            response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
            if response.status_code >= 300:
                errors.append(f"webhook: HTTP {response.status_code}")
        except requests.RequestException as exc:
            logger.warning("alert webhook failed: %s", type(exc).__name__)
            errors.append(f"webhook: {type(exc).__name__}")
    return errors
