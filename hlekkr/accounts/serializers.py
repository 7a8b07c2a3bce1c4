from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from hlekkr.accounts.models import User


class StrictSerializerMixin:
    """Unknown fields are a 400, not silently ignored: a typo in a client should be loud. So is a number where
    the schema says string (DRF's CharField would turn `0` into `"0"`)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            # In a query string or form, DRF takes a field sent empty (`?status=`) as absent and applies its
            # default; the schema says a present field holds one of its values, so empty is refused instead.
            blank = sorted(
                name
                for name, field in self.fields.items()  # type: ignore[attr-defined]
                if data.get(name) == "" and not getattr(field, "allow_blank", False)
            )
            if blank:
                raise serializers.ValidationError({name: ["Must not be blank."] for name in blank})
        if isinstance(data, dict):
            fields = self.fields  # type: ignore[attr-defined]
            unknown = sorted(set(data) - set(fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            not_text = sorted(
                name
                for name, field in fields.items()
                if isinstance(field, serializers.CharField) and data.get(name) is not None
                and not isinstance(data.get(name), str)
            )  # fmt: skip
            if not_text:
                raise serializers.ValidationError({name: ["Not a valid string."] for name in not_text})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictBooleanField(serializers.BooleanField):
    """true or false only: JSON booleans, or the words in a form or query string — not the 1, 0, "yes", "on" ...
    DRF's BooleanField also takes, which the OpenAPI schema (type: boolean) does not allow."""

    TRUE_VALUES = {True, "true", "True", "TRUE"}
    FALSE_VALUES = {False, "false", "False", "FALSE"}
    NULL_VALUES: set = set()

    def to_internal_value(self, data: Any) -> bool:
        # `1 == True` and `0 == False` in Python, so set membership alone would let the integers through.
        if isinstance(data, bool | str) and (data in self.TRUE_VALUES or data in self.FALSE_VALUES):
            return data in self.TRUE_VALUES
        self.fail("invalid", input=data)
        raise AssertionError("unreachable")


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
    everywhere = StrictBooleanField(default=False, help_text="Revoke all of the caller's refresh tokens.")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    auth = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
