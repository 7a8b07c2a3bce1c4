"""API authentication: `Authorization: Api-Key hk_…` and `Authorization: Bearer <JWT>`."""

from __future__ import annotations

import time
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

from hlekkr.accounts import auth_cache
from hlekkr.accounts.models import ApiKey, User
from hlekkr.accounts.services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        # META, as simplejwt reads it: DRF's get_authorization_header goes through request.headers, which builds a
        # dict of every header for this one lookup (~10 us of every token request, API key or not).
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword:
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed({"detail": "Empty API key.", "code": "invalid_api_key"})
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(
                {"detail": "The API key is unknown, revoked or expired.", "code": "invalid_api_key"}
            )
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """simplejwt, but an expired access token says `token_expired` so a client knows to refresh, and the user
    row comes from the process's short-lived auth cache (hlekkr/accounts/auth_cache.py: a deactivated user or a
    changed role takes effect within HLEKKR_AUTH_CACHE_SECONDS)."""

    def get_user(self, validated_token: Token) -> Any:
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        if user_id is None:
            return super().get_user(validated_token)  # raises: no user claim
        # Only users that pass simplejwt's checks (exists, active) are remembered; refusals are not cached.
        return auth_cache.users.get_or_load(user_id, lambda: super(JWTAuthentication, self).get_user(validated_token))

    def get_validated_token(self, raw_token: bytes) -> Token:
        # A token is immutable: once its signature and claims were verified, only the clock can change the
        # answer. So a verified token is remembered (auth_cache.tokens) and only its expiry is checked again.
        cached = auth_cache.tokens.get(raw_token)
        if cached is not None:
            if float(cached["exp"]) + _leeway_seconds() > time.time():
                return cached
            auth_cache.tokens.forget(raw_token)  # expired: verify again below, which says token_expired
        token = self._verify(raw_token)
        if "exp" in token:
            auth_cache.tokens.put(raw_token, token)
        return token

    def _verify(self, raw_token: bytes) -> Token:
        last_error: TokenError | None = None
        for token_class in jwt_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError as exc:
                raise exceptions.AuthenticationFailed(
                    {"detail": "The access token has expired; refresh it.", "code": "token_expired"}
                ) from exc
            except TokenError as exc:
                last_error = exc
        raise exceptions.AuthenticationFailed(
            {"detail": f"The token is not valid: {last_error}", "code": "token_not_valid"}
        )


def _leeway_seconds() -> float:
    leeway = jwt_settings.LEEWAY
    return float(leeway.total_seconds() if hasattr(leeway, "total_seconds") else leeway)


def request_user(request: Any) -> User:
    """The signed-in user of a request that a permission check (or login_required) already admitted, typed
    as the project's User. Refuses rather than passing an AnonymousUser on to a service."""
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def request_api_key(request: Any) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None
