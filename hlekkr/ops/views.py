"""Liveness, readiness, Prometheus metrics and the status page."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hlekkr.api import error_body
from hlekkr.ops import checks, selectors
from hlekkr.ops.charts import line_chart
from hlekkr.ops.models import Alert, AlertStatus
from ratelimit.client_ip import in_networks, networks_setting, parse_address


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No dependencies are touched."""
    return JsonResponse({"status": "ok", "time": timezone.now().isoformat()})


@require_GET
@never_cache
def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every required component works, 503 otherwise (workers and Bedrock are reported
    but not required; see docs/operations.md)."""
    ready, components = checks.readiness()
    degraded = any(not c.healthy for c in components.values())
    body = {
        "status": ("degraded" if degraded else "ok") if ready else "unavailable",
        "time": timezone.now().isoformat(),
        "components": {name: c.as_dict() for name, c in components.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


# --- metrics ----------------------------------------------------------------------------------------------
def _from_allowed_network(request: HttpRequest) -> bool:
    """REMOTE_ADDR only: the connection's peer cannot be forged with a header. Behind a proxy, use the token."""
    networks = networks_setting("HLEKKR_METRICS_ALLOWED_NETWORKS")
    if not networks:
        return False
    address = parse_address(request.META.get("REMOTE_ADDR", "") or "")
    return address is not None and in_networks(address, networks)


def _has_token(request: HttpRequest) -> bool:
    expected = getattr(settings, "HLEKKR_METRICS_TOKEN", "") or ""
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), expected.encode())


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text. Allowed with `Authorization: Bearer $HLEKKR_METRICS_TOKEN` or from an address in
    HLEKKR_METRICS_ALLOWED_NETWORKS. With neither configured the endpoint does not exist (404)."""
    token_configured = bool(getattr(settings, "HLEKKR_METRICS_TOKEN", ""))
    networks_configured = bool(getattr(settings, "HLEKKR_METRICS_ALLOWED_NETWORKS", []))
    if not token_configured and not networks_configured:
        return JsonResponse(error_body("not_found", "No such endpoint or object."), status=404)
    if not (_has_token(request) or _from_allowed_network(request)):
        response = JsonResponse(error_body("not_authenticated", "Metrics need a bearer token."), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    from hlekkr.ops.metrics import render as render_metrics

    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


# --- status page --------------------------------------------------------------------------------------------
def _base_template() -> str:
    """The dashboard's frame (title, extra_head and content blocks; nav) when the review app provides it, else
    ops' own minimal base, so the page works whichever lands first."""
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    try:
        get_template("dashboard/base.html")
    except TemplateDoesNotExist:
        return "ops/base.html"
    return "dashboard/base.html"


@login_required
@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    """Component health, open alerts and the last 24 hours for leads and admins."""
    if not getattr(request.user, "is_lead", False):
        raise PermissionDenied("The status page is for leads and admins.")
    ready, components = checks.readiness()
    series = selectors.hourly_series(24)
    window = selectors.request_window(minutes=5)
    context = {
        "ready": ready,
        "components": [(name, c) for name, c in components.items()],
        "open_alerts": list(Alert.objects.filter(status=AlertStatus.OPEN).select_related("rule")),
        "recent_alerts": list(
            Alert.objects.filter(status=AlertStatus.RESOLVED).select_related("rule").order_by("-resolved_at")[:10]
        ),
        "queue": selectors.review_queue_snapshot(),
        "window": window,
        "uploads": selectors.upload_window(minutes=60),
        "stuck": selectors.stuck_analyses_count(),
        "charts": [
            line_chart("Review queue depth (mean per hour)", series["queue_depth"], unit=""),
            line_chart("Analyses finished per hour", series["analyses_finished"], unit=""),
            line_chart("Requests per hour", series["requests"], unit=""),
            line_chart("Error rate per hour (5xx %)", series["error_rate_pct"], unit="%"),
        ],
        "now": timezone.now(),
        "base_template": _base_template(),
        "nav_active": "status",
    }
    return render(request, "ops/status.html", context)
