from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from hlekkr.accounts.authentication import request_user
from hlekkr.audit.admin import AuditedModelAdmin
from hlekkr.ops.models import Alert, AlertRule, QueueDepthSample, WorkerHeartbeat
from hlekkr.ops.services import alert_rule_save


@admin.register(AlertRule)
class AlertRuleAdmin(AuditedModelAdmin):
    list_display = ("kind", "enabled", "comparison", "threshold", "window_minutes", "periods", "min_count")
    list_editable = ("enabled", "threshold", "window_minutes", "periods", "min_count")
    readonly_fields = ("kind",)

    # The set of rules is fixed by the code that evaluates them; admins tune, they do not add or remove.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        alert_rule_save(rule=obj, actor=request_user(request))  # list_editable saves come through here too


@admin.register(Alert)
class AlertAdmin(AuditedModelAdmin):
    list_display = ("rule", "status", "opened_at", "resolved_at", "value", "last_value", "notified_at")
    list_filter = ("status", "rule")
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(AuditedModelAdmin):
    list_display = ("hostname", "queue", "last_seen")
    list_filter = ("queue",)


@admin.register(QueueDepthSample)
class QueueDepthSampleAdmin(AuditedModelAdmin):
    list_display = ("sampled_at", "total", "sla_breaches")
