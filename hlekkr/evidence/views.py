"""GET /api/v1/media/{id}/evidence/ (JSON) and ?format=zip (evidence.json + artifacts + original)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hlekkr.accounts.authentication import request_user
from hlekkr.evidence import bundle
from hlekkr.exceptions import ValidationFailed
from media.selectors import media_item_get_owned


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """`?format=zip` is this view's own switch, not DRF's renderer override; every body DRF renders (the JSON
    bundle and all errors) is JSON."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type


def _absolute_urls(request: Request, document: dict[str, Any]) -> None:
    """Filesystem storage hands out site-relative download URLs; clients get absolute ones (S3's already are)."""

    def absolute(url: Any) -> Any:
        return request.build_absolute_uri(url) if isinstance(url, str) and url.startswith("/") else url

    document["media"]["download_url"] = absolute(document["media"].get("download_url"))
    for detector in document["detectors"]:
        for artifact in detector.get("artifacts") or []:
            artifact["url"] = absolute(artifact.get("url"))


class EvidenceView(APIView):
    ratelimit_group = "read"
    required_scopes = {"GET": "media:read"}
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "zip"], description="zip: a download")],
        responses={
            200: OpenApiTypes.OBJECT,
            409: OpenApiResponse(description="code analysis_pending: no analysis of the item has completed yet"),
        },
        summary="Evidence bundle of one media item",
    )
    def get(self, request: Request, media_id: uuid.UUID) -> Response | StreamingHttpResponse:
        wanted = request.query_params.get("format", "json")
        if wanted not in ("json", "zip"):
            raise ValidationFailed("format must be json or zip.", code="validation_error", details={"format": wanted})
        item = media_item_get_owned(owner=request_user(request), media_id=media_id)
        document, rows = bundle.build(item)
        _absolute_urls(request, document)
        if wanted == "json":
            return Response(document, headers={"Cache-Control": "private, no-store"})
        response = StreamingHttpResponse(bundle.stream_zip(item, document, rows), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="hlekkr-evidence-{item.id}.zip"'
        response["Cache-Control"] = "private, no-store"
        return response
