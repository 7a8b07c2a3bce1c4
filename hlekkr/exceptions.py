"""One hierarchy for the errors services raise. The API turns each into {"code", "message", "details"}.

Services raise these for domain rules ("this upload was already completed"); views and serializers reject
malformed input before a service runs. Each class carries its HTTP status and a stable machine code that
clients can switch on; a raise site may pass a more specific code. Every code is catalogued with its meaning
in hlekkr/errors.py (rendered into docs/api-errors.md); a test fails on a code that is not.
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope every API error has; the one place it is spelled out."""
    return {"code": code, "message": message, "details": details or {}}


class HlekkrError(Exception):
    status_code = 400
    code = "error"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class ValidationFailed(HlekkrError):
    status_code = 400
    code = "validation_error"
    default_message = "The request is not valid."


class NotAuthenticated(HlekkrError):
    status_code = 401
    code = "not_authenticated"
    default_message = "Authentication credentials were not provided or are not valid."


class PermissionDenied(HlekkrError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to do this."


class NotFound(HlekkrError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(HlekkrError):
    status_code = 409
    code = "conflict"
    default_message = "The object is not in a state that allows this."


class PayloadTooLarge(HlekkrError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(HlekkrError):
    status_code = 415
    code = "unsupported_media_type"
    default_message = "This type of content is not supported."


class RateLimited(HlekkrError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests. Retry after the time given in Retry-After."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(HlekkrError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A component Hlekkr depends on is not available. Try again shortly."


class TransientError(HlekkrError):
    """Worth retrying: storage or a model endpoint hiccupped. Celery tasks autoretry on this."""

    status_code = 503
    code = "transient_error"
    default_message = "A temporary failure occurred; the work will be retried."
