"""Writes for accounts: API keys and refresh-token revocation. Every change is audited."""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from hlekkr.accounts import auth_cache
from hlekkr.accounts.models import ApiKey, Scope, User
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import Conflict, ValidationFailed

VALID_SCOPES = frozenset(Scope.values)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown to the caller once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(raw: str) -> tuple[str, str] | None:
    """'hk_<prefix>.<secret>' -> (prefix, secret), or None when it is not shaped like a key."""
    marker = settings.HLEKKR_API_KEY_PREFIX
    if not raw.startswith(marker) or "." not in raw:
        return None
    prefix, _, secret = raw[len(marker) :].partition(".")
    if not (4 <= len(prefix) <= 16 and prefix.isalnum() and 20 <= len(secret) <= 128):
        return None
    return prefix, secret


def api_key_check_new(*, scopes: Any, expires_at: datetime | None) -> None:
    """The rules for a new key (ValidationFailed otherwise); the admin form runs them too, before saving."""
    if not isinstance(scopes, list | tuple | set | frozenset) or not all(isinstance(s, str) for s in scopes):
        raise ValidationFailed("Scopes must be a list of scope names.", code="invalid_scopes")
    unknown = sorted(set(scopes) - VALID_SCOPES)
    if unknown or not scopes:
        raise ValidationFailed(
            "Give one or more valid scopes.",
            code="invalid_scopes",
            details={"unknown": unknown, "valid": sorted(VALID_SCOPES)},
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", code="invalid_expiry")


def api_key_update(*, api_key: ApiKey, name: str, expires_at: datetime | None, actor: User | None = None) -> ApiKey:
    """Rename a key or change its expiry (its user and scopes are fixed at creation). Audited."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        before = {"name": locked.name, "expires_at": locked.expires_at}
        locked.name, locked.expires_at = name[:100], expires_at
        locked.save(update_fields=["name", "expires_at"])
        transaction.on_commit(lambda: auth_cache.forget_api_key(locked.prefix))
        audit_record(
            actor=actor,
            action="api_key.updated",
            target=locked,
            payload={
                "prefix": locked.prefix,
                "before": before,
                "after": {"name": locked.name, "expires_at": expires_at},
            },
        )
    return locked


def api_key_create(
    *,
    user: User,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    actor: User | None = None,
) -> IssuedKey:
    """Issue a key; the plaintext is returned once and only its secret's SHA-256 is stored. Audited."""
    api_key_check_new(scopes=scopes, expires_at=expires_at)
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            user=user,
            name=name[:100],
            prefix=prefix,
            secret_hash=hash_secret(secret),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        audit_record(
            actor=actor or user,
            action="api_key.created",
            target=key,
            payload={"user": user.username, "scopes": key.scopes, "prefix": prefix},
        )
    return IssuedKey(key, f"{settings.HLEKKR_API_KEY_PREFIX}{prefix}.{secret}")


def api_key_revoke(*, api_key: ApiKey, actor: User | None = None) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not updated:
            raise Conflict("This API key is already revoked.", code="already_revoked")
        api_key.refresh_from_db()
        audit_record(actor=actor, action="api_key.revoked", target=api_key, payload={"prefix": api_key.prefix})
    auth_cache.forget_api_key(api_key.prefix)  # other processes within HLEKKR_AUTH_CACHE_SECONDS
    return api_key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The usable key matching `raw`, or None. Compares hashes in constant time.

    The row (with its user) comes from the process's short-lived auth cache (hlekkr/accounts/auth_cache.py);
    the secret, the expiry and the revocation mark are checked on every call against what was loaded."""
    parsed = parse_key(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    key = auth_cache.api_keys.get_or_load(
        prefix, lambda: ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    )
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    if not key.is_active or not key.user.is_active:
        return None
    key.user = copy.copy(key.user)  # the cached user object is shared between requests; this one is ours
    # last_used_at at minute resolution: no write per request on a busy key.
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        auth_cache.forget_api_key(prefix)  # reload next time rather than write again from a stale copy
    return key


def refresh_tokens_revoke_all(*, user: User, reason: str) -> int:
    """Blacklist every outstanding refresh token of `user` (logout everywhere; reuse of a rotated token)."""
    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
            blacklistedtoken__isnull=False
        )
        count = 0
        for token in outstanding:
            _, created = BlacklistedToken.objects.get_or_create(token=token)
            count += int(created)
        audit_record(
            actor=user,
            action="auth.refresh_tokens_revoked",
            target=user,
            payload={"reason": reason, "count": count},
        )
    return count


def user_create(*, username: str, password: str | None, role: str, email: str = "", actor: User | None = None) -> User:
    with transaction.atomic():
        user = User(username=username, email=email, role=role)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        if role == "admin":
            user.is_staff = True
            user.is_superuser = True
        user.save()
        audit_record(actor=actor, action="user.created", target=user, payload={"username": username, "role": role})
    return user
