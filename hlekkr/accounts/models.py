"""Users with a role, and API keys whose secrets are never stored."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    CLIENT = "client", "Client"
    MODERATOR = "moderator", "Moderator"
    LEAD = "lead", "Lead moderator"
    ADMIN = "admin", "Administrator"


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)

    @property
    def is_moderator(self) -> bool:
        return self.role in (Role.MODERATOR, Role.LEAD, Role.ADMIN)

    @property
    def is_lead(self) -> bool:
        return self.role in (Role.LEAD, Role.ADMIN)


class Scope(models.TextChoices):
    MEDIA_READ = "media:read", "Read media and results"
    MEDIA_WRITE = "media:write", "Upload and delete media"
    REVIEW_READ = "review:read", "Read the review queue"
    REVIEW_WRITE = "review:write", "Claim and decide review items"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """`hk_<prefix>.<secret>`: the prefix finds the row, the SHA-256 of the secret proves the holder."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({settings.HLEKKR_API_KEY_PREFIX}{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
