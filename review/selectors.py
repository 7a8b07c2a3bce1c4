"""Reads for the review API and dashboard. Moderators see the whole queue; clients never reach these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.utils import timezone

from hlekkr.accounts.models import Role, User
from hlekkr.exceptions import NotFound
from review.models import (
    OPEN_STATUSES,
    AssignmentStatus,
    ItemStatus,
    ModeratorProfile,
    ReviewAssignment,
    ReviewDecision,
    ReviewItem,
)

MODERATOR_ROLES = (Role.MODERATOR, Role.LEAD, Role.ADMIN)


def _with_holders(qs: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    """What every list row shows besides the item's own columns: who holds it now."""
    active = ReviewAssignment.objects.filter(status=AssignmentStatus.ACTIVE).select_related("moderator")
    return qs.prefetch_related(Prefetch("assignments", queryset=active, to_attr="active_assignments"))


def _with_people(qs: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    """The detail view also shows the media and every decision with its moderator."""
    return (
        _with_holders(qs)
        .select_related("media")
        .prefetch_related(Prefetch("decisions", queryset=ReviewDecision.objects.select_related("moderator")))
    )


def review_queue(
    *,
    status: str | None = None,
    priority: str | None = None,
    expertise: str | None = None,
    overdue: bool | None = None,
    assigned_to: User | None = None,
) -> QuerySet[ReviewItem]:
    """Open items by default (pending, assigned, escalated), most urgent deadline first."""
    qs = ReviewItem.objects.all()
    qs = qs.filter(status=status) if status else qs.filter(status__in=OPEN_STATUSES)
    if priority:
        qs = qs.filter(priority=priority)
    if expertise:
        # JSON list membership without JSON operators, so SQLite and PostgreSQL agree.
        qs = qs.filter(required_expertise__icontains=f'"{expertise}"')
    if overdue is not None:
        now = timezone.now()
        qs = qs.filter(due_at__lt=now, status__in=OPEN_STATUSES) if overdue else qs.filter(due_at__gte=now)
    if assigned_to is not None:  # a moderator's own list shows their gold probes like any other item
        qs = qs.filter(assignments__moderator=assigned_to, assignments__status=AssignmentStatus.ACTIVE)
    else:
        qs = qs.filter(is_gold_probe=False)
    # List rows (API summary, dashboard rows, lead lists) read holders only; decisions and media are detail.
    return _with_holders(qs).order_by("due_at")


def review_item_get(*, item_id: Any, viewer: User | None = None) -> ReviewItem:
    """One item with its people. Given a `viewer`, another moderator's gold probe is "not found" (leads may look)."""
    try:
        item = _with_people(ReviewItem.objects.select_related("analysis", "media")).get(pk=item_id)
    except (ReviewItem.DoesNotExist, ValueError, DjangoValidationError):  # a malformed id is "not found" too
        raise NotFound("No such review item.", code="not_found")
    if item.is_gold_probe and viewer is not None and not viewer.is_lead:
        from review.models import GoldProbe

        if not GoldProbe.objects.filter(probe_item=item, moderator=viewer).exists():
            raise NotFound("No such review item.", code="not_found")
    return item


def queue_depth() -> dict[str, Any]:
    """Counts for the live depth widget and stats: open items by status, overdue and per priority."""
    now = timezone.now()
    agg = ReviewItem.objects.filter(status__in=OPEN_STATUSES, is_gold_probe=False).aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status=ItemStatus.PENDING)),
        assigned=Count("id", filter=Q(status=ItemStatus.ASSIGNED)),
        escalated=Count("id", filter=Q(status=ItemStatus.ESCALATED)),
        overdue=Count("id", filter=Q(due_at__lt=now)),
        critical=Count("id", filter=Q(priority="critical")),
        high=Count("id", filter=Q(priority="high")),
        medium=Count("id", filter=Q(priority="medium")),
        low=Count("id", filter=Q(priority="low")),
    )
    return agg


def my_assignments(*, user: User) -> QuerySet[ReviewAssignment]:
    return (
        ReviewAssignment.objects.filter(moderator=user, status=AssignmentStatus.ACTIVE)
        .select_related("item", "item__media")
        .order_by("item__due_at")
    )


def active_moderators() -> QuerySet[User]:
    """Users who can be given review work, by username (the lead's assign form)."""
    return User.objects.filter(role__in=MODERATOR_ROLES, is_active=True).order_by("username")


def lead_desk() -> dict[str, Any]:
    """What the lead page lists: escalated and unassigned work, disagreements, inconsistencies, workload."""
    return {
        "escalated": list(review_queue(status=ItemStatus.ESCALATED)[:100]),
        "unassigned": list(review_queue(status=ItemStatus.PENDING)[:100]),
        "disagreements": list(ReviewItem.objects.filter(disagreement=True).order_by("-updated_at")[:50]),
        "inconsistent": list(ReviewItem.objects.filter(inconsistency=True).order_by("-decided_at")[:50]),
        "workload": moderator_workload(),
        "gold": gold_accuracy(),
    }


def moderator_workload() -> list[dict[str, Any]]:
    """Every profile with the items it holds now, its capacity and whether it is on shift."""
    profiles = ModeratorProfile.objects.select_related("user").annotate(
        held=Count("user__review_assignments", filter=Q(user__review_assignments__status=AssignmentStatus.ACTIVE))
    )
    return [
        {"profile": p, "held": p.held, "capacity": p.capacity, "on_shift": p.is_on_shift()}
        for p in profiles.order_by("user__username")
    ]


def review_stats() -> dict[str, Any]:
    """Queue depth, SLA breaches, decisions per moderator and agreement with the machine."""
    decided = ReviewItem.objects.filter(status=ItemStatus.DECIDED, is_gold_probe=False)
    breaches_open = ReviewItem.objects.filter(
        status__in=OPEN_STATUSES, due_at__lt=timezone.now(), is_gold_probe=False
    ).count()
    breaches_decided = decided.filter(decided_at__gt=F("due_at")).count()
    per_moderator: list[dict[str, Any]] = [
        {
            "moderator": row["moderator__username"],
            "decisions": row["decisions"],
            "overrides": row["overrides"],
            "agreement": (1 - row["overrides"] / row["decisions"]) if row["decisions"] else None,
        }
        for row in ReviewDecision.objects.filter(item__is_gold_probe=False)
        .values("moderator__username")
        .annotate(decisions=Count("id"), overrides=Count("id", filter=Q(overrides_machine=True)))
        .order_by("-decisions")
    ]
    totals = decided.aggregate(
        n=Count("id"),
        agree=Count(
            "id",
            filter=(Q(final_verdict="manipulated", machine_probability__gte=0.5))
            | Q(final_verdict="authentic", machine_probability__lt=0.5),
        ),
        inconsistent=Count("id", filter=Q(inconsistency=True)),
        disagreements=Count("id", filter=Q(disagreement=True)),
    )
    return {
        "depth": queue_depth(),
        "sla_breaches": {"open": breaches_open, "decided_late": breaches_decided},
        "per_moderator": per_moderator,
        "decided": totals["n"],
        "machine_agreement": (totals["agree"] / totals["n"]) if totals["n"] else None,
        "inconsistent": totals["inconsistent"],
        "disagreements": totals["disagreements"],
    }


def gold_accuracy() -> dict[str, Any]:
    """Each moderator's accuracy on decided gold probes, overall and over the policy's recent window; a moderator
    whose recent accuracy is below the threshold over at least the minimum number of probes is flagged."""
    from review.models import GoldProbe
    from review.services import escalation_policy_active

    policy = escalation_policy_active()
    since = timezone.now() - dt.timedelta(days=policy.gold_window_days)
    rows = (
        GoldProbe.objects.filter(correct__isnull=False)
        .values("moderator__username")
        .annotate(
            n_total=Count("id"),
            n_correct=Count("id", filter=Q(correct=True)),
            n_recent=Count("id", filter=Q(decided_at__gte=since)),
            n_recent_correct=Count("id", filter=Q(decided_at__gte=since, correct=True)),
        )
        .order_by("moderator__username")
    )
    moderators = []
    for row in rows:
        recent = row["n_recent_correct"] / row["n_recent"] if row["n_recent"] else None
        flagged = (
            recent is not None and row["n_recent"] >= policy.gold_min_probes and recent < policy.gold_accuracy_threshold
        )
        moderators.append(
            {
                "moderator": row["moderator__username"],
                "probes": row["n_total"],
                "accuracy": row["n_correct"] / row["n_total"],
                "recent_probes": row["n_recent"],
                "recent_accuracy": recent,
                "flagged": flagged,
            }
        )
    return {
        "moderators": moderators,
        "flagged": [m["moderator"] for m in moderators if m["flagged"]],
        "threshold": policy.gold_accuracy_threshold,
        "min_probes": policy.gold_min_probes,
        "window_days": policy.gold_window_days,
        "rate": policy.gold_rate,
    }
