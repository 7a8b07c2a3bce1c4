"""The moderator API: one view per operation. Moderators, leads and admins only; clients get 403."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hlekkr.accounts.models import User
from hlekkr.accounts.permissions import HasScope, IsLead, IsModerator
from hlekkr.exceptions import ValidationFailed
from hlekkr.pagination import CursorPagination
from review import selectors, services
from review.api.serializers import (
    AssignSerializer,
    DecideSerializer,
    EscalateSerializer,
    GoldSerializer,
    QueueFilterSerializer,
    gold_item_body,
    review_item_detail,
    review_item_summary,
)


class QueueCursorPagination(CursorPagination):
    # Earliest deadline first: SLA windows fold priority in (critical 2 h ... low 24 h), overdue items lead.
    ordering = "due_at"


class ReviewView(APIView):
    permission_classes = [IsAuthenticated, HasScope, IsModerator]
    required_scopes = {"GET": "review:read", "POST": "review:write"}
    ratelimit_group = "review"

    def body(self, serializer_class: type, request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @staticmethod
    def no_body(request: Request) -> None:
        if request.data:
            raise ValidationFailed("This endpoint takes no body.", code="unexpected_fields")

    @staticmethod
    def detail(item_id: Any) -> dict[str, Any]:
        return review_item_detail(selectors.review_item_get(item_id=item_id))


class QueueView(ReviewView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=["pending", "assigned", "decided", "escalated", "expired", "cancelled"]
            ),
            OpenApiParameter("priority", str, enum=["critical", "high", "medium", "low"]),
            OpenApiParameter("expertise", str),
            OpenApiParameter("overdue", bool),
            OpenApiParameter("mine", bool, description="Only items you hold."),
        ],
        responses={200: OpenApiResponse(description="Review items, earliest deadline first (cursor pagination)")},
    )
    def get(self, request: Request) -> Response:
        filters = QueueFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = selectors.review_queue(
            status=f.get("status"),
            priority=f.get("priority"),
            expertise=f.get("expertise"),
            overdue=f.get("overdue"),
            assigned_to=request.user if f.get("mine") else None,  # type: ignore[arg-type]
        )
        paginator = QueueCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        response = paginator.get_paginated_response([review_item_summary(item) for item in page or []])
        response.data["depth"] = selectors.queue_depth()
        return response


class ItemView(ReviewView):
    @extend_schema(responses={200: OpenApiResponse(description="The item with media URL, analysis and decisions")})
    def get(self, request: Request, item_id: Any) -> Response:
        # Renew first, then read once: the response shows the renewed lease (renew ignores unknown ids).
        services.review_assignment_renew(item_id=item_id, user=request.user)  # type: ignore[arg-type]
        item = selectors.review_item_get(item_id=item_id, viewer=request.user)  # type: ignore[arg-type]
        return Response(review_item_detail(item))


class ClaimView(ReviewView):
    @extend_schema(request=None, responses={200: OpenApiResponse(description="The claimed item")})
    def post(self, request: Request, item_id: Any) -> Response:
        self.no_body(request)
        item = services.review_item_claim(item_id=item_id, user=request.user)  # type: ignore[arg-type]
        return Response(self.detail(item.pk))


class ReleaseView(ReviewView):
    @extend_schema(request=None, responses={200: OpenApiResponse(description="The released item")})
    def post(self, request: Request, item_id: Any) -> Response:
        self.no_body(request)
        item = services.review_item_release(item_id=item_id, user=request.user)  # type: ignore[arg-type]
        return Response(self.detail(item.pk))


class DecideView(ReviewView):
    @extend_schema(
        request=DecideSerializer, responses={200: OpenApiResponse(description="The item after the decision")}
    )
    def post(self, request: Request, item_id: Any) -> Response:
        data = self.body(DecideSerializer, request)
        item, _ = services.review_decision_submit(
            item_id=item_id,
            user=request.user,  # type: ignore[arg-type]
            verdict=data["verdict"],
            confidence=data["confidence"],
            notes=data.get("notes", ""),
        )
        return Response(self.detail(item.pk))


class EscalateView(ReviewView):
    @extend_schema(request=EscalateSerializer, responses={200: OpenApiResponse(description="The escalated item")})
    def post(self, request: Request, item_id: Any) -> Response:
        data = self.body(EscalateSerializer, request)
        item = services.review_item_escalate(item_id=item_id, user=request.user, note=data["note"])  # type: ignore[arg-type]
        return Response(self.detail(item.pk))


class NextView(ReviewView):
    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="Your next item (already yours, or freshly claimed)"),
            404: OpenApiResponse(description="code queue_empty: nothing is eligible for you"),
            409: OpenApiResponse(description="code at_capacity: you hold your maximum"),
        },
    )
    def post(self, request: Request) -> Response:
        self.no_body(request)
        item = services.review_item_claim_next(user=request.user)  # type: ignore[arg-type]
        return Response(self.detail(item.pk))


class AssignView(ReviewView):
    permission_classes = [IsAuthenticated, HasScope, IsLead]

    @extend_schema(request=AssignSerializer, responses={200: OpenApiResponse(description="The item after assignment")})
    def post(self, request: Request, item_id: Any) -> Response:
        data = self.body(AssignSerializer, request)
        target = _moderator_named(data["moderator"], field="moderator")
        replace = _moderator_named(data["replace"], field="replace") if data.get("replace") else None
        item = services.review_item_assign(item_id=item_id, moderator=target, by=request.user, replace=replace)  # type: ignore[arg-type]
        return Response(self.detail(item.pk))


class GoldView(ReviewView):
    permission_classes = [IsAuthenticated, HasScope, IsLead]

    @extend_schema(
        request=GoldSerializer,
        responses={201: OpenApiResponse(description="The gold item: review_item_id, verdict, marked_by")},
        examples=[OpenApiExample("Mark as gold with the accepted verdict", value={"verdict": "manipulated"})],
    )
    def post(self, request: Request, item_id: Any) -> Response:
        data = self.body(GoldSerializer, request)
        gold = services.gold_item_mark(item_id=item_id, by=request.user, verdict=data.get("verdict"))  # type: ignore[arg-type]
        return Response(gold_item_body(gold), status=201)


def _moderator_named(username: str, *, field: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None or not user.is_moderator:
        raise ValidationFailed(
            f"No moderator named {username!r}.", code="unknown_moderator", details={"fields": {field: ["Unknown."]}}
        )
    return user
