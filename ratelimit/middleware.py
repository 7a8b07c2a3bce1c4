"""X-RateLimit-* headers on every limited response, the auth refund, and limits for non-API views.

API views are limited by the DRF throttle (ratelimit.throttling); this middleware reads the decision it left
on the request. Django views are limited here, in process_view:
- POST to a login page (/dashboard/login/, /admin/login/): `auth`, by client IP, like the token endpoint.
- Writes under /dashboard/ (claim, decide, escalate, ...): `review`, by the session user.
- Dashboard reads are not limited: they are humans paging through a queue, behind a session login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.views import APIView

from ratelimit import limiter, monitor


def _is_drf(view_func: Any) -> bool:
    cls = getattr(view_func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def _group_for_django_view(request: HttpRequest) -> str | None:
    path, method = request.path, (request.method or "GET").upper()
    if method in limiter.SAFE_METHODS:
        return None
    if path.endswith("/login/") and (path.startswith("/dashboard/") or path.startswith("/admin/")):
        return "auth"
    if path.startswith("/dashboard/"):
        return "review"
    if path.startswith("/api/"):
        return "upload"
    return None


def _set_headers(response: HttpResponse, decision: limiter.Decision) -> None:
    if decision.usage is not None:
        response["X-RateLimit-Limit"] = str(decision.usage.limit)
        response["X-RateLimit-Remaining"] = str(decision.usage.remaining)
        response["X-RateLimit-Reset"] = str(decision.usage.reset)
    if decision.refused:
        response["Retry-After"] = str(decision.retry_after)


def _succeeded(decision: limiter.Decision, response: HttpResponse) -> bool:
    if decision.success_is_redirect:
        return response.status_code in (301, 302, 303)
    return response.status_code < 400


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision: limiter.Decision | None = getattr(request, "ratelimit_decision", None)
        if decision is not None:
            _set_headers(response, decision)
            if decision.refund_on_success and not decision.refused and _succeeded(decision, response):
                limiter.refund(decision)
        monitor.maybe_flush_inline()
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if _is_drf(view_func):
            return None  # the throttle decides, after DRF authentication
        group = _group_for_django_view(request)
        if group is None:
            return None
        user = getattr(request, "user", None)
        decision = limiter.check(request, group=group, user=user if group != "auth" else None)
        decision.success_is_redirect = True
        request.ratelimit_decision = decision  # type: ignore[attr-defined]
        if not decision.refused:
            return None
        error = decision.error()
        if request.path.startswith("/api/"):
            return JsonResponse(error.as_dict(), status=429)
        return HttpResponse(error.message, status=429, content_type="text/plain; charset=utf-8")
