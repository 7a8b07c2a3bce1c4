from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from hlekkr.accounts.models import User


class StrictSerializerMixin:
    """Unknown fields are a 400, not silently ignored: a typo in a client should be loud."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(self.fields)  # type: ignore[attr-defined]
            unknown = sorted(set(data) - known)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class RotatingRefreshSerializer(StrictSerializerMixin, TokenRefreshSerializer):
    """Refresh with rotation; presenting an already-rotated (blacklisted) token is treated as theft:
    every outstanding refresh token of that user is revoked."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from hlekkr.accounts.services import refresh_tokens_revoke_all

        try:
            # Signature and expiry only: RefreshToken.verify() would stop at the blacklist, which is the
            # case this check is for.
            payload = token_backend.decode(attrs["refresh"], verify=True)
        except TokenBackendError:
            payload = {}
        jti = payload.get("jti")
        if payload.get("token_type") == "refresh" and jti and BlacklistedToken.objects.filter(token__jti=jti).exists():
            user = User.objects.filter(pk=int(payload.get("user_id") or 0)).first()
            if user is not None:
                refresh_tokens_revoke_all(user=user, reason="rotated refresh token reused")
        return super().validate(attrs)


class RevokeSerializer(StrictSerializerMixin, serializers.Serializer):
    refresh = serializers.CharField(required=False, help_text="Revoke this refresh token only.")
    everywhere = serializers.BooleanField(default=False, help_text="Revoke all of the caller's refresh tokens.")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    auth = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
