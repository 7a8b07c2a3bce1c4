"""The API's error envelope: every error under /api/ is {"code", "message", "details"} with the right status."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import set_rollback

from hlekkr.exceptions import (
    HlekkrError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    error_body,
)

__all__ = [
    "JsonNegotiation",
    "error_body",
    "exception_handler",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "plain_caller",
]

logger = logging.getLogger(__name__)

_DRF_CODES: dict[type[Exception], str] = {
    drf.ParseError: "malformed_request",
    drf.AuthenticationFailed: "authentication_failed",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
    drf.ValidationError: "validation_error",
}


_SERVER_ERROR_MESSAGE = "An internal error occurred. It has been logged."
# The database refused or dropped the connection (server down, restarting, out of connections): not a bug
# in the request, so a 503 the client may retry, logged as one line rather than a traceback per request.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_S = 5


def database_unavailable(exc: BaseException) -> ServiceUnavailable:
    logger.warning("database unavailable: %s", str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc)
    return ServiceUnavailable("The database is not available. Try again shortly.", code="service_unavailable")


_NO_SUCH_ROUTE_MESSAGE = "No such endpoint or object."


def _drf_error(exc: drf.APIException) -> tuple[str, str, dict[str, Any]]:
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail
    if isinstance(exc, drf.ValidationError):
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return code, "The request is not valid.", {"fields": fields}
    if isinstance(detail, dict):
        # simplejwt puts {"detail", "code", "messages"} here; keep the machine code it chose.
        inner_code = str(detail.get("code") or code)
        message = str(detail.get("detail") or exc.default_detail)
        return inner_code, message, {}
    return code, str(detail), {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: map every exception to the envelope; unknown ones to a 500 with no internals."""
    headers: dict[str, str] = {}
    # Django's own exceptions become their HlekkrError twins, so each status has one code and default message.
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        exc = database_unavailable(exc)
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    if isinstance(exc, HlekkrError):
        status, body = exc.status_code, exc.as_dict()
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, drf.APIException):
        code, message, details = _drf_error(exc)
        status, body = exc.status_code, error_body(code, message, details)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait:
            headers["Retry-After"] = str(int(wait))
    else:
        logger.exception("Unhandled error in API view %s", context.get("view").__class__.__name__)
        status, body = 500, error_body("server_error", _SERVER_ERROR_MESSAGE)
    set_rollback()
    return Response(body, status=status, headers=headers)


# What nearly every API client sends (or nothing): DRF would pick the one JSON renderer for each of these.
_PLAIN_ACCEPTS = frozenset({"", "*/*", "application/json"})


class JsonNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation (REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"]), answered at once for
    the common case: one renderer, no `?format=`, and an Accept header that is absent, `*/*` or exactly the
    renderer's type, where DRF's answer is (that renderer, its media type). Parsing the Accept header was a
    few percent of every API read. Anything else (a `text/html` that must be refused, parameters such as
    `indent=2`) goes to DRF's own negotiation."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        if format_suffix is None and len(renderers) == 1:
            renderer, accept = renderers[0], request.META.get("HTTP_ACCEPT", "")
            plain = accept in ("", "*/*") or (accept == renderer.media_type and accept in _PLAIN_ACCEPTS)
            if plain and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


def plain_caller(view: Any, request: HttpRequest) -> tuple[Any, Any] | None:
    """(user, auth) of a plain Django request, decided by the DRF view's own authentication classes and then
    its permission classes, exactly as DRF's `initial()` would; None whenever DRF should decide instead (no
    credentials, a refusal, any error), so DRF answers it in the error shape.

    For a read that can be answered without DRF's request wrapping, negotiation and renderer (the cached media
    detail): it still goes through every check DRF would run. Sets `request.user` as DRF does."""
    try:
        for authenticator in view.get_authenticators():
            result = authenticator.authenticate(request)
            if result is not None:
                break
        else:
            return None
        user, auth = result
        request.user, request.auth = user, auth  # type: ignore[attr-defined]
        if not all(permission.has_permission(request, view) for permission in view.get_permissions()):
            return None
    except Exception:  # a refusal (401, 403) or trouble (a database outage: 503): DRF raises it again
        return None
    return user, auth


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Django-level handlers (hlekkr/urls.py): JSON envelope under /api/, Django's own pages elsewhere.
def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", _NO_SUCH_ROUTE_MESSAGE), status=404)
    return defaults.page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    """Django calls this inside its `except`: a database outage met outside a DRF view (session or user
    loading in middleware, dashboard and admin pages) is a 503 too, never a 500."""
    current = sys.exc_info()[1]
    if isinstance(current, DATABASE_UNAVAILABLE):
        unavailable = database_unavailable(current)
        if _is_api(request):
            response: HttpResponse = JsonResponse(unavailable.as_dict(), status=503)
        else:
            response = HttpResponse(unavailable.message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    if _is_api(request):
        return JsonResponse(error_body("server_error", _SERVER_ERROR_MESSAGE), status=500)
    return defaults.server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)
    return defaults.bad_request(request, exception or Exception())


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(PermissionDenied().as_dict(), status=PermissionDenied.status_code)
    return defaults.permission_denied(request, exception or DjangoPermissionDenied())
