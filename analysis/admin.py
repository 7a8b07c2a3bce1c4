"""Admin: scoring policies (activated through the audited service), hash banks, read-only analyses."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from analysis import conf, selectors
from analysis.models import (
    Analysis,
    BankedHash,
    BedrockCall,
    DetectorResult,
    HashBank,
    ScoringPolicy,
    ScoringPolicyEvaluation,
)
from analysis.proposals import scoring_policy_evaluate
from analysis.services import scoring_policy_activate
from hlekkr.accounts.models import User
from hlekkr.audit.admin import AuditedModelAdmin
from hlekkr.exceptions import HlekkrError


def _staff(request: HttpRequest) -> User:
    # The admin site serves only logged-in staff: the user is a real account, never anonymous.
    return cast(User, request.user)


@admin.register(ScoringPolicy)
class ScoringPolicyAdmin(AuditedModelAdmin):
    list_display = ("version", "is_active", "bias", "authentic_threshold", "manipulated_threshold",
                    "proposed_by_calibration", "shadow_summary", "created_at")  # fmt: skip
    list_filter = ("is_active", "proposed_by_calibration")
    # Activation goes through the action (one atomic, audited flip), never by ticking the box. The shadow
    # evaluation sits beside it: the latest one is summarised in the list and shown whole on the policy's page.
    readonly_fields = ("is_active", "proposed_by_calibration", "shadow_evaluation", "created_at", "created_by")
    actions = ["activate", "evaluate"]

    def get_urls(self) -> list[Any]:
        extra = [
            path(
                "<int:policy_id>/evaluations/<int:evaluation_id>/reliability.png",
                self.admin_site.admin_view(self.reliability_png),
                name="analysis_scoringpolicy_reliability",
            )
        ]
        return extra + super().get_urls()

    def reliability_png(self, request: HttpRequest, policy_id: int, evaluation_id: int) -> HttpResponse:
        evaluation = get_object_or_404(ScoringPolicyEvaluation, pk=evaluation_id, policy_id=policy_id)
        response = HttpResponse(bytes(evaluation.reliability_png), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @staticmethod
    def _latest(obj: ScoringPolicy) -> ScoringPolicyEvaluation | None:
        return obj.evaluations.order_by("-created_at").first()

    @admin.display(description="shadow: log-loss / AUC / escalation (active → this)")
    def shadow_summary(self, obj: ScoringPolicy) -> str:
        evaluation = self._latest(obj)
        if evaluation is None:
            return "-"
        mine, active = evaluation.metrics.get("proposed") or {}, evaluation.metrics.get("active") or {}

        def pair(key: str) -> str:
            return f"{active.get(key, '-')} → {mine.get(key, '-')}" if active else str(mine.get(key, "-"))

        return f"{pair('log_loss')} / {pair('auc')} / {pair('escalation_rate')} (n={evaluation.items})"

    @admin.display(description="shadow evaluation (latest)")
    def shadow_evaluation(self, obj: ScoringPolicy) -> str:
        evaluation = self._latest(obj) if obj.pk else None
        if evaluation is None:
            return "None yet: select the policy in the list and run “Run a shadow evaluation”."
        columns = [("active", f"active v{evaluation.baseline.version}" if evaluation.baseline else "active")]
        columns = [c for c in columns if evaluation.metrics.get(c[0])] + [("proposed", f"this policy v{obj.version}")]
        rows = []
        for key, label in (("log_loss", "log-loss (lower is better)"), ("auc", "AUC (higher is better)"),
                           ("escalation_rate", "escalation rate"), ("scored", "items scored")):  # fmt: skip
            rows.append((label, *(str((evaluation.metrics.get(c) or {}).get(key, "-")) for c, _ in columns)))
        header = format_html_join("", "<th>{}</th>", ((label,) for _, label in columns))
        body = format_html_join("", "<tr><td>{}</td>" + "<td>{}</td>" * len(columns) + "</tr>", rows)
        image = reverse("admin:analysis_scoringpolicy_reliability", args=[obj.pk, evaluation.pk])
        return format_html(
            "<p>{} reviewed items ({} manipulated), labels by source {}, on {}.</p>"
            "<table><tr><th></th>{}</tr>{}</table>"
            '<p><img src="{}" width="420" height="420" alt="Reliability diagram of both policies"></p>'
            "<p>Activating stays your decision: use the “Activate” action in the list.</p>",
            evaluation.items,
            evaluation.metrics.get("positives", "?"),
            evaluation.metrics.get("labels", {}),
            evaluation.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            header,
            body,
            image,
        )

    def has_change_permission(self, request: HttpRequest, obj: ScoringPolicy | None = None) -> bool:
        # Analyses record the version they used: an active or used policy is frozen; edit a new version instead.
        if obj is not None and (obj.is_active or obj.analysis_set.exists()):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ScoringPolicy | None = None) -> bool:
        if obj is not None and (obj.is_active or obj.analysis_set.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ScoringPolicy, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = _staff(request)
        super().save_model(request, obj, form, change)

    @admin.action(description="Activate the selected policy (deactivates the current one)")
    def activate(self, request: HttpRequest, queryset: QuerySet[ScoringPolicy]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one policy to activate.", level=messages.ERROR)
            return
        policy = scoring_policy_activate(policy=queryset.get(), actor=_staff(request))
        self.message_user(request, f"Scoring policy v{policy.version} is now active.", level=messages.SUCCESS)

    @admin.action(description="Run a shadow evaluation (the last N reviewed items, against the active policy)")
    def evaluate(self, request: HttpRequest, queryset: QuerySet[ScoringPolicy]) -> None:
        for policy in queryset[:5]:
            try:
                evaluation = scoring_policy_evaluate(policy=policy, actor=_staff(request))
            except HlekkrError as error:
                self.message_user(request, error.message, level=messages.ERROR)
                return
            self.message_user(
                request, f"v{policy.version}: evaluated on {evaluation.items} reviewed items.", level=messages.SUCCESS
            )


class BankedHashInline(admin.TabularInline):
    model = BankedHash
    extra = 0
    fields = ("pdq_hash", "quality", "label", "created_at")
    readonly_fields = ("created_at",)
    show_change_link = True
    max_num = 200  # large banks are imported with `manage.py import_hashes`, not edited inline


@admin.register(HashBank)
class HashBankAdmin(AuditedModelAdmin):
    list_display = ("name", "kind", "is_active", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    inlines = [BankedHashInline]


@admin.register(BankedHash)
class BankedHashAdmin(AuditedModelAdmin):
    list_display = ("pdq_hash", "bank", "quality", "label", "created_at")
    list_filter = ("bank",)
    search_fields = ("pdq_hash", "label")
    list_select_related = ("bank",)


class _ReadOnly(AuditedModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DetectorResultInline(admin.TabularInline):
    model = DetectorResult
    extra = 0
    fields = ("detector", "detector_version", "status", "score", "duration_ms")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Analysis)
class AnalysisAdmin(_ReadOnly):
    list_display = ("id", "media", "run_number", "status", "queue", "attempts", "trust_score", "verdict", "created_at")
    list_filter = ("status", "queue", "verdict")
    search_fields = ("id", "media__id")
    list_select_related = ("media",)
    inlines = [DetectorResultInline]


@admin.register(DetectorResult)
class DetectorResultAdmin(_ReadOnly):
    list_display = ("analysis", "detector", "detector_version", "status", "score", "duration_ms")
    list_filter = ("detector", "status")
    list_select_related = ("analysis",)


@admin.register(BedrockCall)
class BedrockCallAdmin(_ReadOnly):
    """Per-call Bedrock usage; the list header shows today's spend against the daily budget (docs/bedrock.md)."""

    list_display = ("created_at", "model_id", "outcome", "input_tokens", "output_tokens", "cost_usd", "latency_ms")
    list_filter = ("outcome", "model_id")
    search_fields = ("model_id", "analysis__id")
    date_hierarchy = "created_at"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        spent, budget = selectors.bedrock_spent_today_usd(), conf.bedrock_daily_budget_usd()
        reached = " - reached: Bedrock abstains until midnight UTC" if spent >= budget else ""
        self.message_user(
            request,
            f"Bedrock spend today (UTC): ${spent:.4f} of the ${budget:.2f} daily budget "
            f"(HLEKKR_BEDROCK_DAILY_BUDGET_USD){reached}.",
            messages.WARNING if spent >= budget else messages.INFO,
        )
        return super().changelist_view(request, extra_context)
