"""Writes of the ratelimit app: policy edits (audited, broadcast to every process) and monitor flushes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.forms.models import model_to_dict

from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from ratelimit import monitor
from ratelimit.models import RateLimitHit, RateLimitPolicy
from ratelimit.policies import policy_version_bump

logger = logging.getLogger(__name__)

_AUDITED_FIELDS = ("group", "key_type", "rate", "role_multipliers", "enabled", "description")


def _snapshot(policy: RateLimitPolicy) -> dict[str, Any]:
    return model_to_dict(policy, fields=_AUDITED_FIELDS)


def ratelimit_policy_save(*, actor: User | None, policy: RateLimitPolicy) -> RateLimitPolicy:
    """Validate and save a new or edited policy, audit the change (before and after), and bump the shared
    policy version after commit so every web process reloads within its TTL."""
    policy.full_clean()
    with transaction.atomic():
        before = None
        if policy.pk is not None:
            old = RateLimitPolicy.objects.select_for_update().filter(pk=policy.pk).first()
            before = _snapshot(old) if old else None
        policy.save()
        audit_record(
            actor=actor,
            action="ratelimit.policy.created" if before is None else "ratelimit.policy.updated",
            target=policy,
            payload={"before": before, "after": _snapshot(policy)},
        )
        transaction.on_commit(policy_version_bump)
    return policy


def ratelimit_policy_delete(*, actor: User | None, policy: RateLimitPolicy) -> None:
    """Delete a policy window, audited. A group left with no rows at all falls back to the built-in defaults."""
    with transaction.atomic():
        snapshot = _snapshot(policy)
        policy_id = policy.pk
        policy.delete()
        audit_record(
            actor=actor,
            action="ratelimit.policy.deleted",
            object_type="ratelimit.ratelimitpolicy",
            object_id=str(policy_id),
            payload={"before": snapshot},
        )
        transaction.on_commit(policy_version_bump)


def ratelimit_monitor_store(*, counts: monitor.Counts) -> int:
    """Add drained counts to the per-minute rows (adding, so a minute flushed twice is counted once each time
    its counts were drained). Returns the number of rows touched."""
    with transaction.atomic():
        for (minute, group, key), (requests, refused) in counts.items():
            at = datetime.fromtimestamp(minute * 60, tz=UTC)
            key = key[:100]
            rows = RateLimitHit.objects.filter(key=key, group=group, minute=at)
            if rows.update(requests=F("requests") + requests, refused=F("refused") + refused):
                continue
            try:
                with transaction.atomic():
                    RateLimitHit.objects.create(key=key, group=group, minute=at, requests=requests, refused=refused)
            except IntegrityError:  # another flusher created it between our update and insert
                rows.update(requests=F("requests") + requests, refused=F("refused") + refused)
    return len(counts)


def ratelimit_monitor_flush() -> int:
    """Drain the cache counters into RateLimitHit. Run every minute by beat (ratelimit/beat.py)."""
    try:
        counts = monitor.drain()
    except Exception as exc:
        logger.error("rate-limit monitor: cannot drain counters (%s)", type(exc).__name__)
        return 0
    if not counts:
        return 0
    try:
        return ratelimit_monitor_store(counts=counts)
    except Exception:
        logger.exception(
            "rate-limit monitor: %d drained rows could not be stored; put back for the next flush", len(counts)
        )
        monitor.restore(counts)
        raise
