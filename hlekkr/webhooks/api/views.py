"""Client webhook endpoints: register (secret shown once), list, read, delete, enable, and delivery history."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hlekkr.accounts.authentication import request_user
from hlekkr.exceptions import NotFound
from hlekkr.openapi import paginated
from hlekkr.pagination import CursorPagination
from hlekkr.webhooks import selectors, services
from hlekkr.webhooks.api.serializers import (
    DeliveryOutput,
    EndpointCreatedOutput,
    EndpointCreateInput,
    EndpointOutput,
)
from hlekkr.webhooks.models import WebhookEndpoint

SCOPES = {"GET": "media:read", "POST": "media:write", "DELETE": "media:write"}


def _own_endpoint(request: Request, endpoint_id: Any) -> WebhookEndpoint:
    endpoint = selectors.endpoint_of(request_user(request), endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    return endpoint


class EndpointListCreateView(APIView):
    ratelimit_group = "webhooks"
    required_scopes = SCOPES

    @extend_schema(responses=paginated("PaginatedEndpointList", EndpointOutput), operation_id="webhooks_list")
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.endpoints_of(request_user(request)), request, view=self)
        return paginator.get_paginated_response(EndpointOutput(page, many=True).data)

    @extend_schema(request=EndpointCreateInput, responses={201: EndpointCreatedOutput})
    def post(self, request: Request) -> Response:
        serializer = EndpointCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(owner=request_user(request), **serializer.validated_data)
        body = EndpointOutput(endpoint).data
        body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


class EndpointDetailView(APIView):
    ratelimit_group = "webhooks"
    required_scopes = SCOPES

    @extend_schema(responses=EndpointOutput)
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        return Response(EndpointOutput(_own_endpoint(request, endpoint_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        services.webhook_endpoint_delete(endpoint=_own_endpoint(request, endpoint_id), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointEnableView(APIView):
    ratelimit_group = "webhooks"
    required_scopes = SCOPES

    @extend_schema(request=None, responses=EndpointOutput)
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = services.webhook_endpoint_enable(
            endpoint=_own_endpoint(request, endpoint_id), actor=request_user(request)
        )
        return Response(EndpointOutput(endpoint).data)


class DeliveryListView(APIView):
    ratelimit_group = "webhooks"
    required_scopes = SCOPES

    @extend_schema(
        responses=paginated("PaginatedDeliveryList", DeliveryOutput), operation_id="webhooks_deliveries_list"
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = _own_endpoint(request, endpoint_id)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.deliveries_of(endpoint), request, view=self)
        return paginator.get_paginated_response(DeliveryOutput(page, many=True).data)
