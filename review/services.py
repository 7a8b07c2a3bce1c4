"""Every write of the review app. Locking rules (see docs/review.md):

* A review item's row lock (`select_for_update`) guards its slots, status and decisions; take it first.
* A moderator's profile row lock serialises that moderator's own claims, so concurrent requests cannot push
  them past their capacity.
* Pull mode locks candidate items with SKIP LOCKED, so concurrent claimers never take the same slot twice and
  wait on each other only when every claimable row is locked at that moment (then for the first one).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from analysis.models import Analysis, DetectorResult
from hlekkr.accounts.models import Role, User
from hlekkr.audit.services import audit_record
from hlekkr.events import REVIEW_DECIDED, publish
from hlekkr.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from media.models import MediaItem
from media.services import media_item_record_final_verdict
from review import assignment as algo
from review import escalation
from review.models import (
    EXPERTISE_TAGS,
    OPEN_STATUSES,
    PRIORITY_RANK,
    AssignmentSource,
    AssignmentStatus,
    EscalationPolicy,
    GoldItem,
    GoldProbe,
    HumanVerdict,
    ItemStatus,
    ModeratorProfile,
    Priority,
    ReviewAssignment,
    ReviewDecision,
    ReviewItem,
    Seniority,
)

logger = logging.getLogger(__name__)

PULL_CANDIDATES = 10  # rows a pull claim locks and ranks; small, so concurrent claimers rarely skip far


# --- policy and profiles ------------------------------------------------------------------------------------
def escalation_policy_active() -> EscalationPolicy:
    """The active policy; the data migration creates one, and a missing one is recreated with the defaults."""
    policy = EscalationPolicy.objects.filter(is_active=True).first()
    if policy is None:
        policy, _ = EscalationPolicy.objects.get_or_create(is_active=True, defaults={"name": "default"})
    return policy


def escalation_thresholds(policy: EscalationPolicy) -> escalation.Thresholds:
    return escalation.Thresholds(
        trust_threshold=policy.trust_threshold,
        probability_threshold=policy.probability_threshold,
        conflict_strength=policy.conflict_strength,
        qa_sample_rate=policy.qa_sample_rate,
        critical_probability=policy.critical_probability,
        high_probability=policy.high_probability,
    )


def moderator_profile_ensure(*, user: User) -> ModeratorProfile:
    """The user's profile, created on first use with defaults from the role: moderators start junior; leads
    and admins are leads with every tag at level 3. Admins start off the push rota (`is_active=False`): they
    can still pull work, but the batch run does not hand them items they never asked for."""
    if not user.is_moderator:
        raise PermissionDenied("Only moderators have a review profile.", code="not_a_moderator")
    try:
        return user.moderator_profile
    except ModeratorProfile.DoesNotExist:
        pass
    is_lead = user.role in (Role.LEAD, Role.ADMIN)
    defaults: dict[str, Any] = {
        "seniority": Seniority.LEAD if is_lead else Seniority.JUNIOR,
        "expertise": dict.fromkeys(EXPERTISE_TAGS, 3) if is_lead else {"image": 2},
        "is_active": user.role != Role.ADMIN,
    }
    with transaction.atomic():
        profile, created = ModeratorProfile.objects.get_or_create(user=user, defaults=defaults)
        if created:
            audit_record(actor=None, action="review.profile_created", target=profile, payload={"user": user.username})
    return profile


def moderator_profiles_ensure_all() -> int:
    """Profiles for every moderator, lead and admin who lacks one; returns how many were created."""
    missing = User.objects.filter(role__in=[Role.MODERATOR, Role.LEAD, Role.ADMIN], moderator_profile__isnull=True)
    count = 0
    for user in missing:
        moderator_profile_ensure(user=user)
        count += 1
    return count


# --- escalation -----------------------------------------------------------------------------------------------
def _sla_due(policy: EscalationPolicy, priority: str, start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(hours=policy.sla_hours(priority))


def review_item_create_for_analysis(*, payload: dict[str, Any]) -> ReviewItem | None:
    """The in-transaction subscriber to `analysis.completed`: open a review item when the policy says so.

    Runs inside the pipeline's transaction, so the analysis and its review item commit (or roll back) together.
    Idempotent: a second delivery for the same analysis returns the existing item. Open items for older
    analyses of the same media are superseded (status expired) since their machine outcome is stale.
    """
    analysis_id = str(payload["analysis_id"])
    existing = ReviewItem.objects.filter(analysis_id=analysis_id, is_gold_probe=False).first()
    if existing is not None:
        return existing
    analysis = Analysis.objects.select_related("media").filter(pk=analysis_id).first()
    if analysis is None:
        logger.warning("analysis.completed for unknown analysis %s", analysis_id)
        return None
    now = timezone.now()
    superseded = list(
        ReviewItem.objects.select_for_update().filter(media_id=analysis.media_id, status__in=OPEN_STATUSES)
    )
    for stale in superseded:
        _end_active_assignments(stale, AssignmentStatus.RELEASED, now)
        stale.status = ItemStatus.EXPIRED
        stale.open_slots = 0
        stale.escalation_note = f"Superseded by analysis {analysis_id}."
        stale.save(update_fields=["status", "open_slots", "escalation_note", "updated_at"])

    def audit_superseded() -> None:
        for stale in superseded:
            audit_record(actor=None, action="review.item_superseded", target=stale, payload={"by": analysis_id})

    policy = escalation_policy_active()
    categories = {
        str(reason.get("category", ""))
        for reasons in DetectorResult.objects.filter(analysis_id=analysis_id, status="ok").values_list(
            "reasons", flat=True
        )
        for reason in (reasons or [])
        if isinstance(reason, dict)
    }
    outcome = escalation.evaluate(payload, escalation_thresholds(policy), reason_categories=categories)
    if outcome is None:
        audit_superseded()
        return None
    priority = Priority(outcome.priority)
    item = ReviewItem.objects.create(
        analysis=analysis,
        media_id=analysis.media_id,
        priority=priority,
        priority_rank=PRIORITY_RANK[priority],
        reasons=outcome.reasons,
        required_expertise=outcome.required_expertise,
        reviewers_required=outcome.reviewers_required,
        open_slots=outcome.reviewers_required,
        due_at=_sla_due(policy, priority, now),
        kind=str(payload.get("kind") or analysis.media.kind),
        machine_trust_score=payload.get("trust_score"),
        machine_probability=payload.get("manipulation_probability"),
        machine_confidence=payload.get("confidence"),
        machine_verdict=str(payload.get("verdict") or ""),
        client_urgent=outcome.client_urgent,
        qa_sample=outcome.qa_sample,
        disagreement=False,
    )
    audit_superseded()
    audit_record(
        actor=None,
        action="review.item_created",
        target=item,
        payload={
            "analysis_id": analysis_id,
            "priority": item.priority,
            "reasons": [r["code"] for r in outcome.reasons],
            "reviewers_required": item.reviewers_required,
            "required_expertise": item.required_expertise,
            "due_at": item.due_at.isoformat(),
        },
    )
    return item


def review_items_cancel_for_media(*, media_id: Any) -> int:
    """The media is gone: its open review items are cancelled and their assignments end."""
    now = timezone.now()
    with transaction.atomic():
        items = list(ReviewItem.objects.select_for_update().filter(media_id=media_id, status__in=OPEN_STATUSES))
        for item in items:
            _end_active_assignments(item, AssignmentStatus.RELEASED, now)
            item.status = ItemStatus.CANCELLED
            item.open_slots = 0
            item.save(update_fields=["status", "open_slots", "updated_at"])
        for item in items:
            audit_record(actor=None, action="review.item_cancelled", target=item, payload={"media_id": str(media_id)})
    return len(items)


# --- shared helpers ---------------------------------------------------------------------------------------------
def _end_active_assignments(item: ReviewItem, status: str, now: dt.datetime) -> int:
    return ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).update(
        status=status, ended_at=now
    )


def _sync_status(item: ReviewItem) -> None:
    if item.status in (ItemStatus.PENDING, ItemStatus.ASSIGNED):
        item.status = ItemStatus.PENDING if item.open_slots > 0 else ItemStatus.ASSIGNED


def _active_load(user: User) -> int:
    return ReviewAssignment.objects.filter(moderator=user, status=AssignmentStatus.ACTIVE).count()


def _lock_item(item_id: Any) -> ReviewItem:
    try:
        return ReviewItem.objects.select_for_update().get(pk=item_id)
    except (ReviewItem.DoesNotExist, ValueError, DjangoValidationError):  # a malformed UUID is just "not found"
        raise NotFound("No such review item.", code="not_found")


def _check_eligible(item: ReviewItem, profile: ModeratorProfile) -> None:
    """Whether `profile` may hold a slot of `item` by seniority (status and duplicates are checked by the
    callers); the rule itself is algo.seniority_refusal."""
    refusal = algo.seniority_refusal(profile.seniority, priority=item.priority, lead_only=item.lead_only)
    if refusal == "lead_only":
        raise PermissionDenied("Escalated items are for lead moderators.", code="lead_only")
    if refusal == "insufficient_seniority":
        raise PermissionDenied("Critical items need a senior or lead moderator.", code="insufficient_seniority")


def _check_probe_holder(item: ReviewItem, user: User) -> None:
    """A gold probe exists for one moderator only: to anyone else (leads' assign included) it is not there."""
    if item.is_gold_probe and not GoldProbe.objects.filter(probe_item=item, moderator=user).exists():
        raise NotFound("No such review item.", code="not_found")


def _check_open(item: ReviewItem) -> None:
    if item.status == ItemStatus.DECIDED:
        raise Conflict("This item has already been decided.", code="item_decided")
    if item.status in (ItemStatus.EXPIRED, ItemStatus.CANCELLED):
        raise Conflict(f"This item is {item.status} and can no longer be reviewed.", code="item_closed")


def _take_slot(
    item: ReviewItem,
    user: User,
    policy: EscalationPolicy,
    *,
    source: str,
    by: User | None,
    now: dt.datetime,
    opened: bool = False,
) -> ReviewAssignment:
    """Give `user` a slot of the locked `item` (callers checked eligibility, duplicates and capacity).
    Writes only; the caller audits with `_audit_slot` (an outbox insert, in any order: docs/audit.md).
    On PostgreSQL the item's slots and the new assignment are one statement (see `_slot_sql`)."""
    assignment = ReviewAssignment(
        item=item,
        moderator=user,
        source=source,
        assigned_by=by,
        lease_expires_at=now + dt.timedelta(minutes=policy.lease_minutes),
        opened_at=now if opened else None,
        created_at=timezone.now(),
    )
    before = (item.open_slots, item.status, item.updated_at)
    item.open_slots -= 1
    _sync_status(item)
    item.updated_at = assignment.created_at
    try:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_slot_sql(), _slot_params(item, assignment))
                assignment.pk = cursor.fetchone()[0]
            assignment._state.adding, assignment._state.db = False, connection.alias
        else:
            assignment.save(force_insert=True)
            item.save(update_fields=["open_slots", "status", "updated_at"])
    except BaseException:
        item.open_slots, item.status, item.updated_at = before  # e.g. the pair's unique constraint refused it
        raise
    return assignment


_SLOT_COLUMNS = (
    "item_id",
    "moderator_id",
    "status",
    "source",
    "assigned_by_id",
    "lease_expires_at",
    "opened_at",
    "created_at",
)


def _slot_sql() -> str:
    """The item's new slot count and status, and the new assignment, in one statement: a data-modifying CTE
    runs exactly once whether or not the INSERT reads it, and the statement is atomic, so a refused insert (the
    one-active-assignment-per-pair constraint) leaves the slots as they were."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(column) for column in _SLOT_COLUMNS)
    values = ", ".join(["%s"] * len(_SLOT_COLUMNS))
    # Only the models' own table and column names are interpolated; every value is a parameter.
    return (
        f"WITH slot AS (UPDATE {qn(ReviewItem._meta.db_table)}"  # noqa: S608  # nosec B608
        " SET open_slots = %s, status = %s, updated_at = %s WHERE id = %s)"
        f" INSERT INTO {qn(ReviewAssignment._meta.db_table)} ({columns}) VALUES ({values}) RETURNING id"
    )


def _slot_params(item: ReviewItem, assignment: ReviewAssignment) -> list[Any]:
    return [
        item.open_slots,
        item.status,
        item.updated_at,
        item.pk,
        item.pk,
        assignment.moderator_id,
        AssignmentStatus.ACTIVE.value,
        assignment.source,
        assignment.assigned_by_id,
        assignment.lease_expires_at,
        assignment.opened_at,
        assignment.created_at,
    ]


def _audit_slot(item: ReviewItem, assignment: ReviewAssignment, *, by: User | None) -> None:
    user = assignment.moderator
    action = {"auto": "review.assigned_auto", "pull": "review.claimed", "lead": "review.assigned"}[assignment.source]
    audit_record(
        actor=by or (user if assignment.source == AssignmentSource.PULL else None),
        action=action,
        target=item,
        payload={"moderator": user.username, "lease_expires_at": assignment.lease_expires_at.isoformat()},
    )


def _schedule_assignment_after_commit() -> None:
    from review.tasks import assignment_run_schedule

    transaction.on_commit(assignment_run_schedule, robust=True)


def _overdue_first(now: dt.datetime) -> Case:
    """Sort key: items past their SLA deadline before the rest (pull claims and the batch run agree)."""
    return Case(When(due_at__lt=now, then=Value(0)), default=Value(1), output_field=IntegerField())


# --- pull mode ----------------------------------------------------------------------------------------------------
def _claimable(user: User, profile: ModeratorProfile, now: dt.datetime) -> QuerySet[ReviewItem]:
    mine_active = ReviewAssignment.objects.filter(item=OuterRef("pk"), moderator=user, status=AssignmentStatus.ACTIVE)
    mine_decided = ReviewDecision.objects.filter(item=OuterRef("pk"), moderator=user)
    # algo.seniority_refusal as a filter: per status (escalated = lead-only), the priorities this moderator may take
    takeable = Q(pk__in=[])
    for status in (ItemStatus.PENDING, ItemStatus.ESCALATED):
        lead_only = status == ItemStatus.ESCALATED
        priorities = [
            p for p in Priority if algo.seniority_refusal(profile.seniority, priority=p, lead_only=lead_only) is None
        ]
        if priorities:
            takeable |= Q(status=status, priority__in=priorities)
    qs = ReviewItem.objects.filter(takeable, open_slots__gt=0, is_gold_probe=False).filter(
        ~Exists(mine_active), ~Exists(mine_decided)
    )
    return qs.order_by(_overdue_first(now), "priority_rank", "due_at", "created_at")


def _to_item_in(
    item: ReviewItem, policy: EscalationPolicy, now: dt.datetime, excluded: Iterable[str] = ()
) -> algo.ItemIn:
    return algo.ItemIn(
        id=str(item.pk),
        priority=item.priority,
        seconds_left=(item.due_at - now).total_seconds(),
        sla_seconds=policy.sla_hours(item.priority) * 3600,
        required_expertise=tuple(item.required_expertise or ()),
        open_slots=item.open_slots,
        excluded=frozenset(excluded),
        lead_only=item.lead_only,
    )


def _to_moderator_in(profile: ModeratorProfile, load: int) -> algo.ModeratorIn:
    return algo.ModeratorIn(
        id=str(profile.user_id),
        seniority=profile.seniority,
        expertise={str(k): int(v) for k, v in (profile.expertise or {}).items() if isinstance(v, int)},
        capacity=profile.capacity,
        load=load,
    )


def _claim_context_sql() -> str:
    """The first statement of a "next item" claim (see `_claim_context`), built from the models' own names."""
    qn = connection.ops.quote_name
    profile, policy = ModeratorProfile._meta, EscalationPolicy._meta
    assignment, item = ReviewAssignment._meta.db_table, ReviewItem._meta.db_table
    profile_columns = ", ".join(f"p.{qn(str(f.column))}" for f in profile.concrete_fields)
    policy_columns = ", ".join(
        f"pol.{qn(str(f.column))} AS {qn('policy_' + f.attname)}" for f in policy.concrete_fields
    )
    # SQLite has no row locks (it runs one write transaction at a time), as select_for_update knows too.
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    # Only the models' own table and column names are interpolated; every value is a parameter.
    return (
        f"SELECT {profile_columns}, {policy_columns},"  # noqa: S608  # nosec B608
        f" (SELECT count(*) FROM {qn(assignment)} a WHERE a.moderator_id = p.user_id AND a.status = %(active)s)"
        " AS held,"
        f" (SELECT a.id FROM {qn(assignment)} a JOIN {qn(item)} i ON i.id = a.item_id"
        "   WHERE a.moderator_id = p.user_id AND a.status = %(active)s AND a.opened_at IS NULL"
        "   AND a.lease_expires_at > %(now)s ORDER BY i.priority_rank, i.due_at LIMIT 1) AS pushed_id"
        f" FROM {qn(profile.db_table)} p LEFT JOIN {qn(policy.db_table)} pol ON pol.is_active"
        f" WHERE p.user_id = %(user)s{lock}"
    )


def _claim_context(
    user: User, now: dt.datetime
) -> tuple[ModeratorProfile, EscalationPolicy | None, int, int | None] | None:
    """In one statement: the caller's profile, locked (it serialises this moderator's claims, so parallel
    requests cannot overrun their capacity), the active policy (read fresh on every claim, so an admin's edit
    applies to the next claim: no cache to invalidate), how many items the caller holds, and the assignment
    the batch run pushed to them that they have not opened yet (most urgent first). None when the caller has
    no profile yet; the policy is None when no policy is active."""
    rows = list(
        ModeratorProfile.objects.raw(
            _claim_context_sql(), {"user": user.pk, "active": AssignmentStatus.ACTIVE.value, "now": now}
        )
    )
    if not rows:
        return None
    row = rows[0]
    extra = vars(row)  # the columns beyond the profile's own fields
    fields = EscalationPolicy._meta.concrete_fields
    policy = None
    if extra["policy_id"] is not None:
        policy = EscalationPolicy.from_db(
            "default", [f.attname for f in fields], [f.to_python(extra[f"policy_{f.attname}"]) for f in fields]
        )
    return row, policy, int(extra["held"]), extra["pushed_id"]


def review_item_claim_next(*, user: User) -> ReviewItem:
    """ "Give me my next item". First an item the batch run pushed to the caller that they have not opened
    yet; otherwise claim the best eligible pending item (overdue first, then priority and SLA, the final pick
    among a few candidates by the assignment score, i.e. expertise and workload). Raises at_capacity when the
    caller already holds their maximum and queue_empty when nothing is eligible.

    An ordinary pull claim is five statements on PostgreSQL (pinned by a test): the context (`_claim_context`),
    the caller's load counted again under the profile lock, the candidates (SKIP LOCKED), the item's slots with
    the new assignment (`_take_slot`), and the audit outbox insert; five on SQLite too, where there is no recount
    but the slot update and the insert are two. Opening a pushed item is four; a gold
    probe (at the policy's `gold_rate`) adds its own few, and a pick that found every claimable row locked by
    other claimers adds one (a blocking pick)."""
    if not user.is_moderator:
        raise PermissionDenied("Only moderators have a review profile.", code="not_a_moderator")
    now = timezone.now()
    with transaction.atomic():
        context = _claim_context(user, now)
        if context is None:  # the first claim ever creates the profile
            moderator_profile_ensure(user=user)
            context = _claim_context(user, now)
            assert context is not None
        profile, active_policy, load, pushed_id = context
        policy = active_policy or escalation_policy_active()  # none active: recreated with the defaults
        # Conditional: the item's row is not locked here, so a lead's reassignment or the caller's own
        # decision may have ended this assignment since it was read; then fall through to a pull claim.
        if (
            pushed_id is not None
            and ReviewAssignment.objects.filter(pk=pushed_id, status=AssignmentStatus.ACTIVE).update(
                opened_at=now, lease_expires_at=now + dt.timedelta(minutes=policy.lease_minutes)
            )
            == 1
        ):
            pushed = ReviewItem.objects.get(assignments__pk=pushed_id)
            audit_record(actor=user, action="review.opened", target=pushed, payload={"via": "next"})
            return pushed
        if connection.features.has_select_for_update_of:
            # The load counted in the locking statement used that statement's snapshot, taken before it waited
            # for the profile lock, so a batch run that held the lock and committed a push is missing from it
            # (CI overfilled a moderator 6 of 5 that way). Count again now that the lock is held. SQLite runs one
            # write transaction at a time: its count is already fresh.
            load = _active_load(user)
        if load >= profile.capacity:
            raise Conflict(
                f"You already hold {load} items, your maximum. Decide or release one first.",
                code="at_capacity",
                details={"held": load, "capacity": profile.capacity},
            )
        probe = _gold_probe_hand_out(user, profile, policy, now)
        if probe is not None:
            return probe
        claimable = _claimable(user, profile, now)
        candidates = list(claimable.select_for_update(skip_locked=True)[:PULL_CANDIDATES])
        if not candidates:
            # Every claimable row may be locked by other claimers that are about to take one slot each and
            # release the rest: wait for the first one rather than call a busy queue empty. The wait ends when
            # that claimer commits: a claimer holding candidate locks takes its slot without waiting on anyone.
            candidates = list(claimable.select_for_update()[:1])
        if not candidates:
            raise NotFound("No review item is waiting for you.", code="queue_empty")

        # Overdue first and priority order are strict; among the leading equals, the best fit for this moderator.
        def group(item: ReviewItem) -> tuple[bool, int]:
            return (item.due_at < now, item.priority_rank)

        leaders = [item for item in candidates if group(item) == group(candidates[0])]
        me = _to_moderator_in(profile, load)
        best = max(leaders, key=lambda item: algo.pair_score(_to_item_in(item, policy, now), me))
        assignment = _take_slot(best, user, policy, source=AssignmentSource.PULL, by=None, now=now, opened=True)
        _audit_slot(best, assignment, by=None)
    return best


def review_item_claim(*, item_id: Any, user: User) -> ReviewItem:
    """Claim one named item. Claiming an item you already hold is a no-op (and renews the lease)."""
    profile = moderator_profile_ensure(user=user)
    policy = escalation_policy_active()
    now = timezone.now()
    with transaction.atomic():
        ModeratorProfile.objects.select_for_update().filter(pk=profile.pk).first()
        item = _lock_item(item_id)
        _check_probe_holder(item, user)
        _check_open(item)
        held = ReviewAssignment.objects.filter(item=item, moderator=user, status=AssignmentStatus.ACTIVE).first()
        if held is not None:
            held.lease_expires_at = now + dt.timedelta(minutes=policy.lease_minutes)
            held.opened_at = held.opened_at or now
            held.save(update_fields=["lease_expires_at", "opened_at"])
            return item
        if ReviewDecision.objects.filter(item=item, moderator=user).exists():
            raise Conflict("You have already decided this item.", code="already_decided")
        _check_eligible(item, profile)
        if item.open_slots <= 0:
            raise Conflict("Every reviewer slot of this item is taken.", code="fully_assigned")
        load = _active_load(user)
        if load >= profile.capacity:
            raise Conflict(
                f"You already hold {load} items, your maximum.",
                code="at_capacity",
                details={"held": load, "capacity": profile.capacity},
            )
        assignment = _take_slot(item, user, policy, source=AssignmentSource.PULL, by=None, now=now, opened=True)
        _audit_slot(item, assignment, by=None)
    return item


def review_item_release(*, item_id: Any, user: User) -> ReviewItem:
    """Hand an item back to the queue."""
    with transaction.atomic():
        item = _lock_item(item_id)
        updated = ReviewAssignment.objects.filter(item=item, moderator=user, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.RELEASED, ended_at=timezone.now()
        )
        if not updated:
            raise Conflict("You do not hold this item.", code="not_assigned")
        if item.status in (ItemStatus.PENDING, ItemStatus.ASSIGNED, ItemStatus.ESCALATED):
            item.open_slots = min(item.reviewers_required, item.open_slots + 1)
            _sync_status(item)
            item.save(update_fields=["open_slots", "status", "updated_at"])
        audit_record(actor=user, action="review.released", target=item, payload={})
    _schedule_assignment_after_commit()
    return item


def review_assignment_renew(*, item_id: Any, user: User) -> ReviewAssignment | None:
    """Extend the caller's lease while the item is open in front of them (page view, heartbeat, activity).
    Not audited: a heartbeat extends a lease, it does not change who holds what. None when the caller holds
    no live lease on the item (including a malformed id, or a lease that ended while we renewed it)."""
    now = timezone.now()
    try:
        assignment = (
            ReviewAssignment.objects.filter(
                item_id=item_id, moderator=user, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now
            )
            .order_by("-created_at")
            .first()
        )
    except (ValueError, DjangoValidationError):
        return None
    if assignment is None:
        return None
    lease_expires_at = now + dt.timedelta(minutes=escalation_policy_active().lease_minutes)  # holders only
    opened_at = assignment.opened_at or now
    # Conditional on still being active and unexpired: the expiry task or a decision may have ended it since.
    renewed = ReviewAssignment.objects.filter(
        pk=assignment.pk, status=AssignmentStatus.ACTIVE, lease_expires_at__gt=now
    ).update(lease_expires_at=lease_expires_at, opened_at=opened_at)
    if not renewed:
        return None
    assignment.lease_expires_at, assignment.opened_at = lease_expires_at, opened_at
    return assignment


def review_leases_expire(*, now: dt.datetime | None = None) -> int:
    """Return the slots of expired leases to the queue (beat task); idempotent."""
    now = now or timezone.now()
    expired_ids = list(
        ReviewAssignment.objects.filter(status=AssignmentStatus.ACTIVE, lease_expires_at__lte=now).values_list(
            "item_id", "id"
        )
    )
    count = 0
    for item_id, assignment_id in expired_ids:
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().filter(pk=item_id).first()
            if item is None:
                continue
            flipped = ReviewAssignment.objects.filter(
                pk=assignment_id, status=AssignmentStatus.ACTIVE, lease_expires_at__lte=now
            ).update(status=AssignmentStatus.EXPIRED, ended_at=now)
            if not flipped:
                continue  # decided or renewed in the meantime
            if item.is_open:
                item.open_slots = min(item.reviewers_required, item.open_slots + 1)
                _sync_status(item)
                item.save(update_fields=["open_slots", "status", "updated_at"])
            audit_record(actor=None, action="review.lease_expired", target=item, payload={"assignment": assignment_id})
            count += 1
    if count:
        _schedule_assignment_after_commit()
    return count


# --- lead operations ---------------------------------------------------------------------------------------------
def review_item_assign(*, item_id: Any, moderator: User, by: User, replace: User | None = None) -> ReviewItem:
    """A lead assigns an item to a moderator (themselves to take it over). When no slot is open, the holder
    named by `replace` (or the only holder) is moved off the item."""
    if not by.is_lead:
        raise PermissionDenied("Only lead moderators can assign work.", code="lead_only")
    if not moderator.is_moderator or not moderator.is_active:
        raise ValidationFailed("That user is not an active moderator.", code="not_a_moderator")
    profile = moderator_profile_ensure(user=moderator)
    policy = escalation_policy_active()
    now = timezone.now()
    with transaction.atomic():
        ModeratorProfile.objects.select_for_update().filter(pk=profile.pk).first()
        item = _lock_item(item_id)
        _check_probe_holder(item, by)
        _check_open(item)
        if ReviewAssignment.objects.filter(item=item, moderator=moderator, status=AssignmentStatus.ACTIVE).exists():
            raise Conflict(f"{moderator.username} already holds this item.", code="already_assigned")
        if ReviewDecision.objects.filter(item=item, moderator=moderator).exists():
            raise Conflict(f"{moderator.username} has already decided this item.", code="already_decided")
        _check_eligible(item, profile)
        moved: ReviewAssignment | None = None
        if item.open_slots <= 0:
            holders = ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE)
            if replace is not None:
                holders = holders.filter(moderator=replace)
            found = list(holders.select_related("moderator")[:2])
            if len(found) != 1:
                raise ValidationFailed(
                    "Every slot is held; name the holder to replace.",
                    code="replace_required",
                    details={"holders": [a.moderator.username for a in found]},
                )
            moved = found[0]
        # The moved holder is never `moderator` (already_assigned above), so their load is unaffected: check
        # capacity before any write.
        if _active_load(moderator) >= profile.capacity and moderator != by:
            raise Conflict(f"{moderator.username} is at capacity.", code="at_capacity")
        if moved is not None:
            ReviewAssignment.objects.filter(pk=moved.pk).update(status=AssignmentStatus.REASSIGNED, ended_at=now)
            item.open_slots += 1
        assignment = _take_slot(item, moderator, policy, source=AssignmentSource.LEAD, by=by, now=now)
        if moved is not None:
            audit_record(
                actor=by, action="review.unassigned", target=item, payload={"moderator": moved.moderator.username}
            )
        _audit_slot(item, assignment, by=by)
    return item


def review_item_escalate(*, item_id: Any, user: User, note: str) -> ReviewItem:
    """A reviewer sends the item to the leads (e.g. out of their depth). Every active holder is released:
    an escalated item belongs to the leads until one of them decides it."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("Say why you escalate.", code="note_required")
    with transaction.atomic():
        item = _lock_item(item_id)
        _check_open(item)
        holds = ReviewAssignment.objects.filter(item=item, moderator=user, status=AssignmentStatus.ACTIVE).exists()
        if not holds and not user.is_lead:
            raise PermissionDenied("You do not hold this item.", code="not_assigned")
        if item.status == ItemStatus.ESCALATED and not holds:
            raise Conflict("This item is already escalated.", code="already_escalated")
        _end_active_assignments(item, AssignmentStatus.RELEASED, timezone.now())
        item.status = ItemStatus.ESCALATED
        item.open_slots = 1
        item.escalation_note = note[:2000]
        item.save(update_fields=["status", "open_slots", "escalation_note", "updated_at"])
        audit_record(actor=user, action="review.escalated", target=item, payload={"note": item.escalation_note})
    _schedule_assignment_after_commit()
    return item


# --- decisions ---------------------------------------------------------------------------------------------------
def machine_leaning(item: ReviewItem) -> str:
    """What the machine said, in the human vocabulary: manipulated when P >= 0.5, else authentic."""
    if item.machine_probability is None:
        return HumanVerdict.INCONCLUSIVE
    return HumanVerdict.MANIPULATED if item.machine_probability >= 0.5 else HumanVerdict.AUTHENTIC


def review_decision_submit(
    *, item_id: Any, user: User, verdict: str, confidence: float, notes: str = ""
) -> tuple[ReviewItem, ReviewDecision]:
    """Record the caller's verdict. The item is decided when its required reviewers agree (or a lead resolves
    an escalation); disagreement escalates to a lead. A final verdict is written to the media item (the machine
    score stays beside it), audited and published as `review.decided`."""
    if verdict not in HumanVerdict.values:
        raise ValidationFailed("verdict must be authentic, manipulated or inconclusive.", code="invalid_verdict")
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValidationFailed("confidence must be between 0 and 1.", code="invalid_confidence")
    notes = (notes or "").strip()
    policy = escalation_policy_active()
    now = timezone.now()
    with transaction.atomic():
        item = _lock_item(item_id)
        if ReviewDecision.objects.filter(item=item, moderator=user).exists():
            raise Conflict("You have already decided this item.", code="already_decided")
        _check_open(item)
        mine = ReviewAssignment.objects.filter(item=item, moderator=user).order_by("-created_at").first()
        if mine is None or mine.status in (AssignmentStatus.RELEASED, AssignmentStatus.REASSIGNED):
            raise PermissionDenied("This item is not assigned to you. Claim it first.", code="not_assigned")
        if mine.status == AssignmentStatus.EXPIRED or mine.lease_expires_at <= now:
            raise Conflict("Your lease on this item expired before you decided; claim it again.", code="lease_expired")
        overrides = (
            verdict != HumanVerdict.INCONCLUSIVE
            and verdict != machine_leaning(item)
            and (machine_leaning(item) != HumanVerdict.INCONCLUSIVE)
        )
        if overrides and not notes:
            raise ValidationFailed(
                "Notes are required when your verdict overrides the machine's.", code="notes_required"
            )
        try:
            with transaction.atomic():
                decision = ReviewDecision.objects.create(
                    item=item,
                    moderator=user,
                    verdict=verdict,
                    confidence=float(confidence),
                    notes=notes[:5000],
                    overrides_machine=overrides,
                )
        except IntegrityError:
            raise Conflict("You have already decided this item.", code="already_decided")
        ReviewAssignment.objects.filter(pk=mine.pk).update(status=AssignmentStatus.COMPLETED, ended_at=now)
        decided_by: list[ReviewDecision] | None = None
        disagreeing: list[ReviewDecision] | None = None
        if item.is_gold_probe:
            return _gold_probe_decided(item, decision, user, now)
        if item.status == ItemStatus.ESCALATED:
            decided_by = [decision]
        else:
            decisions = list(item.decisions.all())
            if len(decisions) >= item.reviewers_required:
                if len({d.verdict for d in decisions}) == 1:
                    decided_by = decisions
                else:
                    disagreeing = decisions
        if decided_by is not None:
            _finalise(item, decided_by, policy, now)
        elif disagreeing is not None:
            _end_active_assignments(item, AssignmentStatus.RELEASED, now)
            item.status = ItemStatus.ESCALATED
            item.disagreement = True
            item.open_slots = 1
            item.escalation_note = "Reviewers disagree: " + ", ".join(
                f"{d.moderator_id}={d.verdict}" for d in disagreeing
            )
            item.save(update_fields=["status", "disagreement", "open_slots", "escalation_note", "updated_at"])
        else:
            _sync_status(item)
            item.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=user,
            action="review.decision",
            target=item,
            payload={"verdict": verdict, "confidence": float(confidence), "overrides_machine": overrides},
        )
        if decided_by is not None:
            _announce_decided(item, decided_by, actor=user)
        elif disagreeing is not None:
            audit_record(
                actor=None,
                action="review.disagreement",
                target=item,
                payload={"verdicts": [d.verdict for d in disagreeing]},
            )
    _schedule_assignment_after_commit()
    item.refresh_from_db()
    return item, decision


def _finalise(item: ReviewItem, decisions: list[ReviewDecision], policy: EscalationPolicy, now: dt.datetime) -> None:
    """The review-side writes of a decided item; `_announce_decided` does the rest once the caller audited."""
    verdict = decisions[-1].verdict
    confidence = round(sum(d.confidence for d in decisions) / len(decisions), 3)
    _end_active_assignments(item, AssignmentStatus.RELEASED, now)
    item.status = ItemStatus.DECIDED
    item.final_verdict = verdict
    item.final_confidence = confidence
    item.decided_at = now
    item.open_slots = 0
    item.inconsistency = escalation.is_inconsistent(
        verdict=verdict,
        confidence=confidence,
        machine_trust=item.machine_trust_score,
        machine_confidence=item.machine_confidence,
        gap=policy.inconsistency_trust_gap,
        min_confidence=policy.inconsistency_machine_confidence,
    )
    item.save(
        update_fields=[
            "status",
            "final_verdict",
            "final_confidence",
            "decided_at",
            "open_slots",
            "inconsistency",
            "updated_at",
        ]
    )


def _announce_decided(item: ReviewItem, decisions: list[ReviewDecision], *, actor: User) -> None:
    """Record the final verdict on the media item, audit and publish a decision `_finalise` wrote. The media
    service audits its own write, so this runs after the caller's `review.decision` record (chain order:
    decision, media final verdict, decided)."""
    verdict, confidence = str(item.final_verdict), item.final_confidence
    media_item_record_final_verdict(media_id=item.media_id, verdict=verdict)
    owner_id = MediaItem.objects.filter(pk=item.media_id).values_list("owner_id", flat=True).first()
    audit_record(
        actor=actor,
        action="review.decided",
        target=item,
        payload={
            "verdict": verdict,
            "confidence": confidence,
            "machine_trust_score": item.machine_trust_score,
            "inconsistency": item.inconsistency,
            "reviewers": [d.moderator_id for d in decisions],
        },
    )
    publish(
        REVIEW_DECIDED,
        {
            "review_item_id": str(item.pk),
            "analysis_id": str(item.analysis_id),
            "media_id": str(item.media_id),
            "owner_id": str(owner_id) if owner_id is not None else None,
            "verdict": verdict,
            "confidence": confidence,
        },
    )


# --- gold items ---------------------------------------------------------------------------------------------------
GOLD_VERDICTS = (HumanVerdict.AUTHENTIC, HumanVerdict.MANIPULATED)

# The columns a probe copies from its gold item, so that it looks like any other item to the moderator.
_PROBE_COPIED = (
    "analysis_id",
    "media_id",
    "priority",
    "priority_rank",
    "reasons",
    "required_expertise",
    "kind",
    "machine_trust_score",
    "machine_probability",
    "machine_confidence",
    "machine_verdict",
    "client_urgent",
    "qa_sample",
)


def gold_item_mark(*, item_id: Any, by: User, verdict: str | None = None) -> GoldItem:
    """A lead vouches for a decided item's verdict (by default its final verdict) so it can check moderators.
    Marking changes nothing about the item or its media."""
    if not by.is_lead:
        raise PermissionDenied("Only lead moderators can mark gold items.", code="lead_only")
    with transaction.atomic():
        item = _lock_item(item_id)
        if item.is_gold_probe:
            raise NotFound("No such review item.", code="not_found")
        if item.status != ItemStatus.DECIDED:
            raise Conflict("Only decided items can become gold items.", code="gold_item_not_decided")
        accepted = verdict or item.final_verdict
        if accepted not in GOLD_VERDICTS:
            raise ValidationFailed(
                "A gold item needs an authentic or manipulated verdict.",
                code="gold_verdict_invalid",
                details={"fields": {"verdict": ["authentic or manipulated"]}},
            )
        if GoldItem.objects.filter(item=item).exists():
            raise Conflict("This item is already a gold item.", code="already_gold")
        gold = GoldItem.objects.create(item=item, verdict=accepted, marked_by=by)
        audit_record(
            actor=by,
            action="review.gold_marked",
            target=item,
            payload={"verdict": accepted, "final_verdict": item.final_verdict},
        )
    return gold


def _gold_probe_hand_out(
    user: User, profile: ModeratorProfile, policy: EscalationPolicy, now: dt.datetime
) -> ReviewItem | None:
    """At `policy.gold_rate`, turn this pull claim into a probe: a fresh item copying a gold item this moderator
    has never had, did not decide and did not mark. None when the draw says no or no gold item fits."""
    if policy.gold_rate <= 0 or secrets.SystemRandom().random() >= policy.gold_rate:
        return None
    allowed = [p for p in Priority if algo.seniority_refusal(profile.seniority, priority=p, lead_only=False) is None]
    gold = (
        GoldItem.objects.select_related("item")
        .filter(is_active=True, item__priority__in=allowed)
        .exclude(marked_by=user)
        .exclude(probes__moderator=user)
        .exclude(item__decisions__moderator=user)
        .order_by("?")
        .first()
    )
    if gold is None:
        return None
    source = gold.item
    probe = ReviewItem.objects.create(
        **{field: getattr(source, field) for field in _PROBE_COPIED},
        is_gold_probe=True,
        reviewers_required=1,
        open_slots=1,
        due_at=_sla_due(policy, source.priority, now),
    )
    GoldProbe.objects.create(gold=gold, moderator=user, probe_item=probe)
    assignment = _take_slot(probe, user, policy, source=AssignmentSource.PULL, by=None, now=now, opened=True)
    audit_record(actor=None, action="review.gold_probe_created", target=probe, payload={"gold_item": str(source.pk)})
    _audit_slot(probe, assignment, by=None)
    return probe


def _gold_probe_decided(
    item: ReviewItem, decision: ReviewDecision, user: User, now: dt.datetime
) -> tuple[ReviewItem, ReviewDecision]:
    """Score a probe against its gold verdict. Only the probe closes: the media's verdict is untouched and
    nothing is published (no `review.decided`, so no webhook and no client ever sees it)."""
    probe = GoldProbe.objects.select_related("gold").get(probe_item=item)
    correct = decision.verdict == probe.gold.verdict
    GoldProbe.objects.filter(pk=probe.pk).update(verdict=decision.verdict, correct=correct, decided_at=now)
    item.status = ItemStatus.DECIDED
    item.final_verdict = decision.verdict
    item.final_confidence = decision.confidence
    item.decided_at = now
    item.open_slots = 0
    item.save(update_fields=["status", "final_verdict", "final_confidence", "decided_at", "open_slots", "updated_at"])
    audit_record(
        actor=user,
        action="review.gold_probe_decided",
        target=item,
        payload={"verdict": decision.verdict, "gold_verdict": probe.gold.verdict, "correct": correct},
    )
    item.refresh_from_db()
    return item, decision


# --- batch assignment -------------------------------------------------------------------------------------------
def review_assignment_run(*, max_items: int = 5000) -> int:
    """Push work: solve the optimal assignment over open slots and free capacity of on-shift moderators, then
    apply each pair in its own short transaction (a pair that became invalid meanwhile is skipped)."""
    policy = escalation_policy_active()
    if not policy.auto_assign:
        return 0
    moderator_profiles_ensure_all()
    now = timezone.now()
    items = list(
        ReviewItem.objects.filter(
            status__in=[ItemStatus.PENDING, ItemStatus.ESCALATED], open_slots__gt=0, is_gold_probe=False
        ).order_by(_overdue_first(now), "priority_rank", "due_at")[:max_items]
    )
    if not items:
        return 0
    profiles = [
        p
        for p in ModeratorProfile.objects.select_related("user").filter(
            is_active=True, user__is_active=True, user__role__in=[Role.MODERATOR, Role.LEAD, Role.ADMIN]
        )
        if p.is_on_shift(now)
    ]
    if not profiles:
        return 0
    loads = dict(
        ReviewAssignment.objects.filter(status=AssignmentStatus.ACTIVE)
        .values_list("moderator_id")
        .annotate(n=Count("id"))
        .values_list("moderator_id", "n")
    )
    item_ids = [item.pk for item in items]
    excluded: dict[str, set[str]] = {}
    for item_id, moderator_id in ReviewAssignment.objects.filter(
        item_id__in=item_ids, status=AssignmentStatus.ACTIVE
    ).values_list("item_id", "moderator_id"):
        excluded.setdefault(str(item_id), set()).add(str(moderator_id))
    for item_id, moderator_id in ReviewDecision.objects.filter(item_id__in=item_ids).values_list(
        "item_id", "moderator_id"
    ):
        excluded.setdefault(str(item_id), set()).add(str(moderator_id))
    pairs = algo.assign(
        [_to_item_in(item, policy, now, excluded.get(str(item.pk), ())) for item in items],
        [_to_moderator_in(p, loads.get(p.user_id, 0)) for p in profiles],
    )
    users = {str(p.user_id): p for p in profiles}
    applied = 0
    for pair_item_id, pair_moderator_id in pairs:
        profile = users[pair_moderator_id]
        try:
            with transaction.atomic():
                ModeratorProfile.objects.select_for_update().filter(pk=profile.pk).first()
                item = ReviewItem.objects.select_for_update(skip_locked=True).filter(pk=pair_item_id).first()
                if (
                    item is None
                    or item.open_slots <= 0
                    or item.status not in (ItemStatus.PENDING, ItemStatus.ESCALATED)
                ):
                    continue
                try:  # the plan came from a snapshot: the item may have been escalated since
                    _check_eligible(item, profile)
                except PermissionDenied:
                    continue
                if _active_load(profile.user) >= profile.capacity:
                    continue
                if (
                    ReviewAssignment.objects.filter(
                        item=item, moderator=profile.user, status=AssignmentStatus.ACTIVE
                    ).exists()
                    or ReviewDecision.objects.filter(item=item, moderator=profile.user).exists()
                ):
                    continue
                assignment = _take_slot(item, profile.user, policy, source=AssignmentSource.AUTO, by=None, now=now)
                _audit_slot(item, assignment, by=None)
                applied += 1
        except IntegrityError:
            continue  # a concurrent claim took the same pair; the database constraint kept it single
    return applied
