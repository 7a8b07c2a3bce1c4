"""Batches API: POST batches/ (up to 500 own media ids or URLs) and GET batches/{id}/ (progress, verdicts)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batches import selectors, services
from batches.api.serializers import BatchCreateInput
from hlekkr.accounts.authentication import request_user

BATCH_EXAMPLE: dict[str, Any] = {
    "id": "0b7d6c3e-8a51-4a51-9f59-3f0c2e7d1a20",
    "status": "running",
    "total": 3,
    "counts": {"waiting": 1, "running": 1, "done": 1, "failed": 0},
    "progress": 0.3333,
    "created_at": "2026-12-04T19:30:00Z",
    "completed_at": None,
    "items": [
        {
            "index": 0,
            "media_id": "6f1c2a9e-4b1d-4c55-9d0e-2f7f3f5a9b10",
            "url": None,
            "state": "done",
            "verdict": "suspicious",
            "machine_verdict": "suspicious",
            "trust_score": 52,
            "analysis_status": "completed",
            "error": None,
        },
        {
            "index": 1,
            "media_id": "a3c9b1f2-55e4-4a57-8d2c-7e1f0b9d4c33",
            "url": "https://news.example/story/123",
            "state": "running",
            "verdict": None,
            "machine_verdict": None,
            "trust_score": None,
            "analysis_status": None,
            "error": None,
        },
        {
            "index": 2,
            "media_id": None,
            "url": "https://cdn.example/clip.mp4",
            "state": "waiting",
            "verdict": None,
            "machine_verdict": None,
            "trust_score": None,
            "analysis_status": None,
            "error": None,
        },
    ],
}
INVALID_EXAMPLE = {
    "code": "batch_invalid",
    "message": "2 of the 4 entries cannot be analysed; nothing was started.",
    "details": {
        "entries": [
            {"index": 1, "code": "unknown_media", "message": "Not one of your media items."},
            {"index": 3, "code": "duplicate_entry", "message": "Listed twice.", "duplicate_of": 0},
        ]
    },
}


class BatchCollectionView(APIView):
    ratelimit_group = "batch"
    required_scopes = {"POST": "media:write"}

    @extend_schema(
        request=BatchCreateInput,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="The batch, its items waiting or running"),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="batch_invalid (every offending entry named), batch_too_large"
            ),
        },
        summary="Analyse a batch of up to 500 own media items and URLs",
        examples=[
            OpenApiExample(
                "Media ids and a link",
                value={
                    "items": [
                        {"media_id": "6f1c2a9e-4b1d-4c55-9d0e-2f7f3f5a9b10"},
                        {"url": "https://news.example/story/123"},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample("Created", value=BATCH_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample("Refused", value=INVALID_EXAMPLE, response_only=True, status_codes=["400"]),
        ],
    )
    def post(self, request: Request) -> Response:
        form = BatchCreateInput(data=request.data)
        form.is_valid(raise_exception=True)
        batch = services.batch_create(owner=request_user(request), entries=form.validated_data["items"])
        return Response(selectors.batch_body(batch), status=status.HTTP_201_CREATED)


class BatchView(APIView):
    ratelimit_group = "read"
    required_scopes = {"GET": "media:read"}

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="A batch's progress: counts by state and each item's verdict as it lands",
        examples=[OpenApiExample("In progress", value=BATCH_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, batch_id: str) -> Response:
        batch = selectors.batch_get_owned(owner=request_user(request), batch_id=batch_id)
        return Response(selectors.batch_body(batch))
