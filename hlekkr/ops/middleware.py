from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from hlekkr.ops.logging import request_id_var
from hlekkr.ops.metrics import observe_request
from hlekkr.ops.stats import request_stats

logger = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Accept a well-formed X-Request-ID from the caller (or make one), log with it, and echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: that builds a dict of every header, for one lookup, on every request.
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


# Probes and scrapes are not traffic: counting them would dilute the error rate and p95 the alerts read.
_UNTRACKED_ROUTES = frozenset({"health", "health/ready", "metrics"})


class RequestStatsMiddleware:
    """Per-route latency and status: Prometheus instruments in process, plus per-minute rows for the alerts.

    The route label is the URL pattern (`api/v1/media/<uuid:pk>/`), never the raw path, so label cardinality
    stays bounded; unresolved paths share one label.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name or "<unnamed>") if match is not None else "<unmatched>"
        if route.startswith("static/") or route in _UNTRACKED_ROUTES:
            return response
        try:
            method = request.method if request.method in _METHODS else "OTHER"
            observe_request(route=route, method=method, status=response.status_code, duration_s=duration)
            request_stats.record(route=route, method=method, status=response.status_code, duration_ms=duration * 1000)
        except Exception:  # telemetry never breaks a response
            logger.exception("request stats failed")
        return response


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
