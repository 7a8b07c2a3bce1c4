"""The audit log in admin (read-only), and the base every admin uses so that each admin write is audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from hlekkr.audit.models import AuditEvent
from hlekkr.audit.services import audit_admin_write


class AuditedAdminMixin:
    """Audits every write made through an admin, by one mechanism: Django's admin reports each write to
    log_addition / log_change / log_deletions (form saves, list_editable rows, inline rows, password changes,
    bulk deletes), and each report is also appended to the audit chain as `admin.added`, `admin.changed` or
    `admin.deleted`, naming the changed fields (never their values: a password hash or secret stays out of the
    log). Form saves already run in the admin's transaction; admin actions are made atomic here, so a bulk
    delete and its audit records commit together. Domain services an admin calls (activating a scoring policy,
    revoking a key) still record their own domain events.

    tests/hlekkr/test_admin_audit.py fails when a registered admin does not use this base."""

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)  # type: ignore[misc]
        audit_admin_write(actor=request.user, verb="added", target=obj, change_message=message)
        return entry

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        entry = super().log_change(request, obj, message)  # type: ignore[misc]
        audit_admin_write(actor=request.user, verb="changed", target=obj, change_message=message)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Called before the rows are deleted, inside the delete view's transaction (or the action's, below).
        objects = list(queryset)
        entries = super().log_deletions(request, objects)  # type: ignore[misc]
        for obj in objects:
            audit_admin_write(actor=request.user, verb="deleted", target=obj, change_message=[])
        return entries

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        with transaction.atomic():
            return super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """admin.ModelAdmin with every write audited (see AuditedAdminMixin)."""


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedModelAdmin):
    list_display = ("sequence", "created_at", "actor_repr", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor_repr", "action")
    ordering = ("-sequence", "-id")

    # Insert-only: admin can read the log, never change it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
