"""Permission classes shared by every app's API."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from hlekkr.accounts.authentication import request_api_key


class HasScope(BasePermission):
    """JWT callers carry their role's full rights; API-key callers also need the view's `required_scopes`
    entry for the HTTP method (e.g. {"GET": "media:read", "POST": "media:write"})."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request_api_key(request)
        if key is None:
            return True
        method = (request.method or "GET").lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True  # the view answers 405 for a method it does not have; no scope can change that
        required: dict[str, str] = getattr(view, "required_scopes", {})
        scope = required.get(request.method or "GET") or required.get("*")
        if scope is None:
            return False  # a view that names no scope is not open to API keys
        return key.has_scope(scope)


class IsModerator(BasePermission):
    message = "Only moderators can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_moderator", False))


class IsLead(BasePermission):
    message = "Only lead moderators can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_lead", False))
