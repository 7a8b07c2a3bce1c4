"""Rate-limit policies (edited in admin) and the monitor's per-minute aggregates."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from ratelimit.rates import RATE_REGEX, describe_period, parse_rate, validate_rate


class Group(models.TextChoices):
    AUTH = "auth", "Login and tokens"
    UPLOAD = "upload", "Uploads and other writes"
    UPLOAD_INIT = "upload_init", "Multipart upload initiation"
    READ = "read", "Reads"
    REVIEW = "review", "Review actions"
    WEBHOOKS = "webhooks", "Webhook management"


class KeyType(models.TextChoices):
    USER = "user", "User (anonymous: client IP)"
    API_KEY = "api_key", "API key (JWT: user; anonymous: client IP)"
    IP = "ip", "Client IP"


ROLES = ("client", "moderator", "lead", "admin")
DEFAULT_ROLE_MULTIPLIERS: dict[str, float] = {"client": 1, "moderator": 2, "lead": 3, "admin": 5}
MAX_MULTIPLIER = 100


def default_role_multipliers() -> dict[str, float]:
    return dict(DEFAULT_ROLE_MULTIPLIERS)


def validate_role_multipliers(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Role multipliers must be an object like {"client": 1, "admin": 5}.', code="invalid")
    for role, factor in value.items():
        if role not in ROLES:
            raise ValidationError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.", code="invalid")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= MAX_MULTIPLIER:
            raise ValidationError(f"Multiplier for {role} must be a number in (0, {MAX_MULTIPLIER}].", code="invalid")


class RateLimitPolicy(models.Model):
    """One window of one group: `upload` may have 10/m and 200/h, both enforced. Edit through the admin or
    `ratelimit.services.ratelimit_policy_save` so every web process picks the change up within seconds."""

    group = models.CharField(max_length=32, choices=Group.choices)
    key_type = models.CharField(max_length=16, choices=KeyType.choices, default=KeyType.USER)
    rate = models.CharField(
        max_length=20, validators=[validate_rate], help_text="Requests per window: 60/m, 5/5m, 1000/h, 10000/d."
    )
    role_multipliers = models.JSONField(
        default=default_role_multipliers,
        validators=[validate_role_multipliers],
        blank=True,
        help_text="The limit is multiplied by the caller's role factor, e.g. "
        '{"client": 1, "moderator": 2, "lead": 3, "admin": 5}. '
        "Missing roles and anonymous callers get a factor of 1.",
    )
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group", "key_type", "rate"]
        verbose_name_plural = "rate limit policies"
        constraints = [
            models.UniqueConstraint(fields=["group", "key_type", "rate"], name="ratelimit_policy_unique_window"),
            models.CheckConstraint(condition=models.Q(rate__regex=RATE_REGEX), name="ratelimit_policy_rate_syntax"),
            models.CheckConstraint(condition=models.Q(group__in=Group.values), name="ratelimit_policy_group_known"),
            models.CheckConstraint(condition=models.Q(key_type__in=KeyType.values), name="ratelimit_policy_key_known"),
        ]

    def __str__(self) -> str:
        state = "" if self.enabled else " (disabled)"
        return f"{self.group}: {self.rate} per {self.key_type}{state}"

    def clean(self) -> None:
        # Field validators skip "empty" JSON ([] and {}), but [] is not an object: check here too.
        try:
            validate_role_multipliers(self.role_multipliers)
        except ValidationError as exc:
            raise ValidationError({"role_multipliers": exc.messages}) from exc

    @property
    def limit_and_period(self) -> tuple[int, int]:
        return parse_rate(self.rate)

    @property
    def human_rate(self) -> str:
        try:
            count, period = parse_rate(self.rate)
        except ValueError:
            return self.rate
        return f"{count} per {describe_period(period)}"


class RateLimitHit(models.Model):
    """Requests and refusals of one key in one group during one minute, flushed from cache counters."""

    key = models.CharField(max_length=100, help_text="user:<id>, key:<api key prefix> or ip:<address>")
    group = models.CharField(max_length=32)
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "-refused"]
        constraints = [
            models.UniqueConstraint(fields=["key", "group", "minute"], name="ratelimit_hit_unique_minute"),
        ]
        indexes = [models.Index(fields=["minute"], name="ratelimit_hit_minute")]

    def __str__(self) -> str:
        return f"{self.key} {self.group} {self.minute:%Y-%m-%d %H:%M}: {self.requests} requests, {self.refused} refused"
