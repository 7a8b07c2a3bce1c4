from __future__ import annotations

from django.contrib import admin

from hlekkr.audit.admin import AuditedModelAdmin
from review.models import (
    EscalationPolicy,
    GoldItem,
    GoldProbe,
    ModeratorProfile,
    ReviewAssignment,
    ReviewDecision,
    ReviewItem,
)


@admin.register(ModeratorProfile)
class ModeratorProfileAdmin(AuditedModelAdmin):
    list_display = ("user", "seniority", "max_concurrent", "is_active", "work_start", "work_end", "time_zone")
    list_filter = ("seniority", "is_active")
    search_fields = ("user__username",)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "is_active",
        "trust_threshold",
        "probability_threshold",
        "qa_sample_rate",
        "gold_rate",
        "lease_minutes",
    )


class AssignmentInline(admin.TabularInline):
    model = ReviewAssignment
    extra = 0
    readonly_fields = ("moderator", "status", "source", "assigned_by", "lease_expires_at", "created_at", "ended_at")
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("moderator", "assigned_by")


class DecisionInline(admin.TabularInline):
    model = ReviewDecision
    extra = 0
    readonly_fields = ("moderator", "verdict", "confidence", "notes", "overrides_machine", "created_at")
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("moderator")


@admin.register(ReviewItem)
class ReviewItemAdmin(AuditedModelAdmin):
    # Read-only: state changes go through the services (audited), not through admin edits or deletes (a
    # delete would cascade to the decisions and lose them without an audit record).
    list_display = ("id", "status", "priority", "due_at", "reviewers_required", "final_verdict", "inconsistency")
    list_filter = ("status", "priority", "qa_sample", "disagreement", "inconsistency")
    inlines = (AssignmentInline, DecisionInline)

    def get_queryset(self, request):
        # The read-only page links its analysis and media: one query, not three.
        return super().get_queryset(request).select_related("analysis", "media")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GoldItem)
class GoldItemAdmin(AuditedModelAdmin):
    # Marked by leads through the service (dashboard or API); admin may only switch one off (audited).
    list_display = ("item", "verdict", "marked_by", "is_active", "created_at")
    list_filter = ("is_active", "verdict")
    readonly_fields = ("item", "verdict", "marked_by", "created_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GoldProbe)
class GoldProbeAdmin(AuditedModelAdmin):
    list_display = ("gold", "moderator", "verdict", "correct", "created_at", "decided_at")
    list_filter = ("correct",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
