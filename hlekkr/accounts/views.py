"""Auth endpoints: obtain, refresh (rotating), revoke, and who-am-I."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from hlekkr.accounts.authentication import request_api_key
from hlekkr.accounts.serializers import (
    MeSerializer,
    RevokeSerializer,
    RotatingRefreshSerializer,
    StrictSerializerMixin,
)
from hlekkr.accounts.services import refresh_tokens_revoke_all
from hlekkr.exceptions import ValidationFailed


class StrictTokenObtainSerializer(StrictSerializerMixin, TokenObtainPairSerializer):
    pass


class TokenObtainView(jwt_views.TokenObtainPairView):
    """POST {username, password} -> {access, refresh}."""

    serializer_class = StrictTokenObtainSerializer
    throttle_scope = "auth"
    ratelimit_group = "auth"


class TokenRefreshView(jwt_views.TokenRefreshView):
    """POST {refresh} -> a new {access, refresh}; the old refresh token is blacklisted."""

    serializer_class = RotatingRefreshSerializer
    ratelimit_group = "auth"


class TokenRevokeView(APIView):
    """Blacklist one refresh token, or all of the caller's (`everywhere: true`)."""

    ratelimit_group = "auth"
    required_scopes = {"*": "media:read"}

    @extend_schema(request=RevokeSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = RevokeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("everywhere"):
            refresh_tokens_revoke_all(user=request.user, reason="revoked by the user")  # type: ignore[arg-type]
            return Response(status=status.HTTP_204_NO_CONTENT)
        raw = data.get("refresh")
        if not raw:
            raise ValidationFailed("Give `refresh` or `everywhere: true`.", code="nothing_to_revoke")
        try:
            token = RefreshToken(raw)
        except TokenError as exc:
            raise ValidationFailed(f"The refresh token is not valid: {exc}", code="token_not_valid") from exc
        if str(token.payload.get("user_id")) != str(request.user.pk):
            raise ValidationFailed("That refresh token is not yours.", code="token_not_valid")
        token.blacklist()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    ratelimit_group = "read"
    required_scopes = {"*": "media:read"}

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        key = request_api_key(request)
        body = {
            "username": request.user.get_username(),
            "role": getattr(request.user, "role", ""),
            "auth": "api_key" if key else "jwt",
            "scopes": list(key.scopes) if key else None,
        }
        return Response(MeSerializer(body).data)
