"""The API's error envelope: every error under /api/ is {"code", "message", "details"} with the right status."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from hlekkr.exceptions import HlekkrError, NotFound, PayloadTooLarge, PermissionDenied, RateLimited, error_body

__all__ = ["error_body", "exception_handler", "handler400", "handler403", "handler404", "handler500"]

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


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Django-level handlers (hlekkr/urls.py): JSON envelope under /api/, Django's own pages elsewhere.
def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", _NO_SUCH_ROUTE_MESSAGE), status=404)
    return defaults.page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
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
