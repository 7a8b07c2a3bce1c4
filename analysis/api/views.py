"""Analysis endpoints: re-analyse a media item, its analysis history, one analysis."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.api.serializers import analysis_detail, analysis_summary
from analysis.selectors import analyses_of_media, analysis_for_user, media_for_user
from analysis.services import analysis_request_rerun
from hlekkr.accounts.authentication import request_user
from hlekkr.exceptions import ValidationFailed
from hlekkr.pagination import CursorPagination


class MediaAnalysisCreateListView(APIView):
    """POST: re-analyse on the batch queue (202; 409 while a run is queued or running). GET: history."""

    required_scopes = {"GET": "media:read", "POST": "media:write"}
    request: Any

    @property
    def ratelimit_group(self) -> str:
        # One path, two operations: a re-analysis costs like an upload, reading history like a read.
        method = (getattr(getattr(self, "request", None), "method", None) or "GET").upper()
        return "upload" if method == "POST" else "read"

    @extend_schema(request=None, responses={202: OpenApiResponse(description="The queued analysis")})
    def post(self, request: Request, media_id: Any) -> Response:
        if request.data:
            raise ValidationFailed("This endpoint takes no body.", code="unexpected_fields")
        media = media_for_user(user=request_user(request), media_id=media_id)
        analysis = analysis_request_rerun(media=media, user=request_user(request))
        analysis.refresh_from_db()
        return Response(analysis_summary(analysis), status=202)

    @extend_schema(responses={200: OpenApiResponse(description="Analyses of the item, newest first")})
    def get(self, request: Request, media_id: Any) -> Response:
        media = media_for_user(user=request_user(request), media_id=media_id)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(analyses_of_media(media=media), request, view=self)
        return paginator.get_paginated_response([analysis_summary(a) for a in page or []])


class AnalysisDetailView(APIView):
    """GET one analysis with its per-detector results, breakdown and short-lived artifact URLs."""

    ratelimit_group = "read"
    required_scopes = {"GET": "media:read"}

    @extend_schema(responses={200: OpenApiResponse(description="One analysis with detector results")})
    def get(self, request: Request, analysis_id: Any) -> Response:
        return Response(analysis_detail(analysis_for_user(user=request_user(request), analysis_id=analysis_id)))
