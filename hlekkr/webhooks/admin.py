from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hlekkr.accounts.authentication import request_user
from hlekkr.audit.admin import AuditedModelAdmin
from hlekkr.exceptions import HlekkrError
from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint
from hlekkr.webhooks.services import webhook_delivery_redeliver, webhook_endpoint_delete, webhook_endpoint_enable


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedModelAdmin):
    list_display = ("url", "owner", "events", "is_active", "failing_since", "disabled_reason", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "owner__username")
    # The secret is never shown again after creation, not even to admins.
    fields = ("owner", "url", "events", "is_active", "failing_since", "disabled_at", "disabled_reason", "created_at")
    readonly_fields = fields
    actions = ["enable_endpoints"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # endpoints are registered through the API, which checks the URL and issues the secret

    # Deleting goes through the service, which audits it like the API's DELETE.
    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=obj, actor=request_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint, actor=request_user(request))

    @admin.action(description="Enable the selected endpoints again")
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            try:
                webhook_endpoint_enable(endpoint=endpoint, actor=request_user(request))
            except HlekkrError as exc:
                self.message_user(request, f"{endpoint.url}: {exc.message}", messages.ERROR)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AuditedModelAdmin):
    list_display = ("event", "endpoint", "status", "attempts", "last_status_code", "last_error", "created_at")
    list_filter = ("status", "event")
    search_fields = ("endpoint__url", "event_id", "last_error")
    list_select_related = ("endpoint",)
    readonly_fields = (
        "endpoint",
        "event",
        "event_id",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "expires_at",
        "last_attempt_at",
        "last_error",
        "last_status_code",
        "created_at",
        "delivered_at",
    )
    fields = readonly_fields
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver the selected deliveries now")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        from hlekkr.webhooks.tasks import enqueue

        done = []
        for delivery in queryset.select_related("endpoint"):
            try:
                done.append(webhook_delivery_redeliver(delivery=delivery, actor=request_user(request)).pk)
            except HlekkrError as exc:
                self.message_user(request, f"{delivery.pk}: {exc.message}", messages.ERROR)
        if done:
            from django.db import transaction

            transaction.on_commit(lambda: enqueue(done))
            self.message_user(request, f"{len(done)} deliveries queued again.", messages.SUCCESS)
