"""Admin: policies (validated, audited, live within seconds) and the monitor (top offenders, busy keys)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from hlekkr.accounts.authentication import request_user
from hlekkr.audit.admin import AuditedModelAdmin
from ratelimit import selectors
from ratelimit.models import RateLimitHit, RateLimitPolicy
from ratelimit.services import ratelimit_policy_delete, ratelimit_policy_save


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(AuditedModelAdmin):
    list_display = ("group", "key_type", "rate", "human_rate", "role_multipliers", "enabled", "updated_at")
    list_filter = ("group", "key_type", "enabled")
    list_editable = ("enabled",)
    fields = ("group", "key_type", "rate", "role_multipliers", "enabled", "description")

    @admin.display(description="means")
    def human_rate(self, obj: RateLimitPolicy) -> str:
        return obj.human_rate

    # The form's full_clean runs the rate and multiplier validators and the unique window check, so bad
    # input is a form error; the service validates again, audits, and tells every process to reload.
    def save_model(self, request: HttpRequest, obj: RateLimitPolicy, form: Any, change: bool) -> None:
        ratelimit_policy_save(actor=request_user(request), policy=obj)

    def delete_model(self, request: HttpRequest, obj: RateLimitPolicy) -> None:
        ratelimit_policy_delete(actor=request_user(request), policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RateLimitPolicy]) -> None:
        for policy in queryset:
            ratelimit_policy_delete(actor=request_user(request), policy=policy)


@admin.register(RateLimitHit)
class RateLimitHitAdmin(AuditedModelAdmin):
    list_display = ("minute", "key", "group", "requests", "refused")
    list_filter = ("group",)
    search_fields = ("key",)
    date_hierarchy = "minute"
    change_list_template = "admin/ratelimit/ratelimithit/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            above = max(1, int(request.GET.get("above", 60)))
            hours = min(24 * 7, max(1, int(request.GET.get("hours", 1))))
        except ValueError:
            above, hours = 60, 1
        # The admin's own filter code rejects unknown query parameters; hand it a copy without ours.
        params = request.GET.copy()
        for name in ("above", "hours"):
            params.pop(name, None)
        request.GET = params  # type: ignore[assignment]
        context = {
            **(extra_context or {}),
            "alert": selectors.refusal_alert(),
            "offenders": selectors.top_offenders(hours=hours, limit=20),
            "busy_keys": selectors.keys_above(requests_per_minute=above, hours=hours),
            "above": above,
            "hours": hours,
        }
        return super().changelist_view(request, extra_context=context)
