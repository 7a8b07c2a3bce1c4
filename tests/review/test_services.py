"""Escalation subscriber, claims, leases, decisions and the batch run, through the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hlekkr.audit.models import AuditEvent
from hlekkr.events import ANALYSIS_COMPLETED, REVIEW_DECIDED, publish, subscribe, unsubscribe
from hlekkr.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from media.models import MediaItem
from review import assignment as algo
from review import services
from review.models import (
    AssignmentStatus,
    EscalationPolicy,
    ItemStatus,
    ModeratorProfile,
    ReviewAssignment,
    ReviewItem,
)
from tests.factories import make_analysis, payload_for

pytestmark = pytest.mark.django_db


def test_a_suspicious_analysis_opens_a_review_item_in_the_same_transaction(client_a, policy) -> None:
    analysis = make_analysis(client_a, probability=0.95, confidence=0.9)
    publish(ANALYSIS_COMPLETED, payload_for(analysis, faces=1))
    item = ReviewItem.objects.get(analysis=analysis)
    assert item.priority == "critical" and item.status == ItemStatus.PENDING
    assert item.required_expertise == ["image", "face_manipulation"]
    assert {r["code"] for r in item.reasons} == {"low_trust", "high_probability"}
    assert abs((item.due_at - timezone.now()).total_seconds() - 2 * 3600) < 60
    assert AuditEvent.objects.filter(action="review.item_created", object_id=str(item.pk)).exists()
    # A second delivery of the same event is absorbed.
    publish(ANALYSIS_COMPLETED, payload_for(analysis))
    assert ReviewItem.objects.filter(analysis=analysis).count() == 1


def test_an_authentic_analysis_is_not_queued_and_a_newer_analysis_supersedes_the_old_item(client_a, policy) -> None:
    policy.qa_sample_rate = 0
    policy.save()
    ok = make_analysis(client_a, probability=0.05)
    publish(ANALYSIS_COMPLETED, payload_for(ok))
    assert not ReviewItem.objects.filter(analysis=ok).exists()
    bad = make_analysis(client_a, probability=0.9)
    publish(ANALYSIS_COMPLETED, payload_for(bad))
    rerun = bad.media.analyses.create(run_number=2, status="completed", manipulation_probability=0.1, trust_score=90)
    publish(ANALYSIS_COMPLETED, payload_for(rerun, detector_scores={}))
    assert ReviewItem.objects.get(analysis=bad).status == ItemStatus.EXPIRED


def _statements(captured: list[dict]) -> list[str]:
    """The statements a service sent, without the transaction control around them (SAVEPOINT/RELEASE here,
    where the test's transaction surrounds the service's; BEGIN/COMMIT in production)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in captured if not q["sql"].startswith(control)]


def test_a_next_item_claim_is_at_most_five_statements_and_one_audit_insert(item_factory, policy, senior) -> None:
    policy.gold_rate = 0  # a probe hand-out (a 5 % draw by default) adds its own statements
    policy.save()
    item_factory(priority="low")
    item_factory(priority="high")
    services.review_item_claim_next(user=senior)
    with CaptureQueriesContext(connection) as ctx:
        services.review_item_claim_next(user=senior)
    statements = _statements(ctx.captured_queries)
    # The profile (locked) with the active policy, the caller's load and any pushed item; the candidates (SKIP
    # LOCKED); the item's slots and the new assignment (one statement on PostgreSQL, two elsewhere); the audit
    # event (an outbox insert: no chain lock).
    assert "review_escalationpolicy" in statements[0] and "review_reviewassignment" in statements[0]
    assert statements[-1].startswith('INSERT INTO "audit_auditevent"')
    if connection.vendor == "postgresql":
        # The load is counted again once the profile lock is held: the locking statement's snapshot predates
        # its wait for the lock (see review_item_claim_next).
        assert len(statements) == 5, statements
        assert statements[0].endswith("FOR UPDATE OF p")
        assert statements[1].startswith("SELECT COUNT(*)") and 'FROM "review_reviewassignment"' in statements[1]
        assert 'FROM "review_reviewitem"' in statements[2] and statements[2].endswith("FOR UPDATE SKIP LOCKED")
        assert statements[3].startswith('WITH slot AS (UPDATE "review_reviewitem"')
        assert 'INSERT INTO "review_reviewassignment"' in statements[3]
    else:  # SQLite: no row locks, and the slot update and the insert are two statements
        assert 'FROM "review_reviewitem"' in statements[1]
        assert len(statements) == 5, statements
        assert statements[2].startswith('INSERT INTO "review_reviewassignment"')
        assert statements[3].startswith('UPDATE "review_reviewitem"')
    assert len(ctx.captured_queries) <= 5 + 2  # with the SAVEPOINT/RELEASE pair
    assert ReviewAssignment.objects.filter(moderator=senior, status=AssignmentStatus.ACTIVE).count() == 2


def test_a_slot_refused_by_the_database_leaves_the_item_as_it_was(item_factory, policy, senior) -> None:
    from django.db import IntegrityError, transaction

    item = item_factory(priority="low")
    services.review_item_claim(item_id=item.pk, user=senior)
    item.refresh_from_db()
    ReviewItem.objects.filter(pk=item.pk).update(open_slots=1, status=ItemStatus.PENDING)  # as if a slot were free
    item.refresh_from_db()
    with pytest.raises(IntegrityError), transaction.atomic():
        services._take_slot(item, senior, policy, source="pull", by=None, now=timezone.now())
    assert (item.open_slots, item.status) == (1, ItemStatus.PENDING)
    item.refresh_from_db()
    assert (item.open_slots, item.status) == (1, ItemStatus.PENDING)
    assert ReviewAssignment.objects.filter(item=item, moderator=senior).count() == 1


def test_opening_a_pushed_item_through_next_is_four_statements(item_factory, policy, senior) -> None:
    pushed = item_factory(priority="low")
    ReviewAssignment.objects.create(
        item=pushed, moderator=senior, source="auto", lease_expires_at=timezone.now() + dt.timedelta(minutes=5)
    )
    with CaptureQueriesContext(connection) as ctx:
        assert services.review_item_claim_next(user=senior) == pushed
    # The context, the conditional lease update, the item, the audit event.
    assert len(_statements(ctx.captured_queries)) == 4, _statements(ctx.captured_queries)
    assignment = ReviewAssignment.objects.get(item=pushed, moderator=senior)
    assert assignment.opened_at is not None
    assert assignment.lease_expires_at > timezone.now() + dt.timedelta(minutes=policy.lease_minutes - 1)


def test_a_policy_edit_applies_to_the_very_next_claim(item_factory, policy, senior) -> None:
    item_factory(priority="low")
    item_factory(priority="low")
    services.review_item_claim_next(user=senior)
    policy.lease_minutes = 7
    policy.save()
    taken = services.review_item_claim_next(user=senior)
    lease = ReviewAssignment.objects.get(item=taken, moderator=senior).lease_expires_at
    assert abs((lease - timezone.now()).total_seconds() - 7 * 60) < 30


def test_a_claim_without_an_active_policy_recreates_the_default_one(item_factory, policy, senior) -> None:
    item = item_factory(priority="low")
    EscalationPolicy.objects.all().delete()
    assert services.review_item_claim_next(user=senior) == item
    assert EscalationPolicy.objects.get(is_active=True).lease_minutes == 30


def test_the_first_claim_of_a_moderator_creates_their_profile(item_factory, moderator) -> None:
    item = item_factory(priority="low")
    assert not ModeratorProfile.objects.filter(user=moderator).exists()
    assert services.review_item_claim_next(user=moderator) == item
    assert ModeratorProfile.objects.get(user=moderator).seniority == "junior"


def test_claim_next_takes_the_most_urgent_eligible_item(item_factory, junior, senior) -> None:
    item_factory(priority="low")
    critical = item_factory(priority="critical")
    overdue = item_factory(priority="medium", due_in=dt.timedelta(minutes=-5))
    assert services.review_item_claim_next(user=senior) == overdue
    assert services.review_item_claim_next(user=senior) == critical
    taken = services.review_item_claim_next(user=junior)
    assert taken.priority == "low"  # the critical item was never offered to the junior
    with pytest.raises(NotFound) as empty:
        services.review_item_claim_next(user=junior)
    assert empty.value.code == "queue_empty"


def test_a_moderator_at_capacity_gets_no_more(item_factory, junior) -> None:
    for _ in range(4):
        item_factory()
    for _ in range(3):
        services.review_item_claim_next(user=junior)
    with pytest.raises(Conflict) as full:
        services.review_item_claim_next(user=junior)
    assert full.value.code == "at_capacity"


def test_a_junior_cannot_claim_a_critical_item(item_factory, junior) -> None:
    critical = item_factory(priority="critical")
    with pytest.raises(PermissionDenied) as denied:
        services.review_item_claim(item_id=critical.pk, user=junior)
    assert denied.value.code == "insufficient_seniority"


def test_a_decision_finalises_the_item_and_reaches_the_media_and_subscribers(item_factory, senior) -> None:
    seen: list[dict] = []

    def handler(event: str, payload: dict) -> None:
        seen.append(payload)

    subscribe(REVIEW_DECIDED, handler, after_commit=False)
    try:
        item = item_factory(probability=0.8, confidence=0.9)
        services.review_item_claim(item_id=item.pk, user=senior)
        item, _decision = services.review_decision_submit(
            item_id=item.pk, user=senior, verdict="manipulated", confidence=0.8
        )
    finally:
        unsubscribe(REVIEW_DECIDED, handler)
    assert item.status == ItemStatus.DECIDED and item.final_verdict == "manipulated"
    assert not item.inconsistency
    assert MediaItem.objects.get(pk=item.media_id).final_verdict == "manipulated"
    assert seen == [
        {
            "review_item_id": str(item.pk),
            "analysis_id": str(item.analysis_id),
            "media_id": str(item.media_id),
            "owner_id": str(item.media.owner_id),
            "verdict": "manipulated",
            "confidence": 0.8,
        }
    ]
    assert AuditEvent.objects.filter(action="review.decided", object_id=str(item.pk)).exists()
    with pytest.raises(Conflict) as twice:
        services.review_decision_submit(item_id=item.pk, user=senior, verdict="authentic", confidence=0.5, notes="x")
    assert twice.value.code == "already_decided"


def test_overriding_the_machine_needs_notes_and_a_far_verdict_is_flagged(item_factory, senior) -> None:
    item = item_factory(probability=0.9, confidence=0.95)
    services.review_item_claim(item_id=item.pk, user=senior)
    with pytest.raises(ValidationFailed) as bare:
        services.review_decision_submit(item_id=item.pk, user=senior, verdict="authentic", confidence=0.9)
    assert bare.value.code == "notes_required"
    item, _ = services.review_decision_submit(
        item_id=item.pk, user=senior, verdict="authentic", confidence=0.9, notes="Original found at the agency."
    )
    assert item.inconsistency and item.final_verdict == "authentic"


def test_deciding_unassigned_or_after_the_lease_expired_is_refused(item_factory, senior, junior) -> None:
    item = item_factory()
    with pytest.raises(PermissionDenied) as unassigned:
        services.review_decision_submit(item_id=item.pk, user=senior, verdict="manipulated", confidence=0.7)
    assert unassigned.value.code == "not_assigned"
    services.review_item_claim(item_id=item.pk, user=senior)
    ReviewAssignment.objects.filter(item=item).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(Conflict) as late:
        services.review_decision_submit(item_id=item.pk, user=senior, verdict="manipulated", confidence=0.7)
    assert late.value.code == "lease_expired"
    assert services.review_leases_expire() == 1
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING and item.open_slots == 1
    assert services.review_item_claim_next(user=junior) == item


def test_two_reviewers_who_disagree_escalate_to_a_lead(item_factory, senior, junior, lead) -> None:
    item = item_factory(reviewers=2, probability=0.8)
    services.review_item_claim(item_id=item.pk, user=senior)
    services.review_item_claim(item_id=item.pk, user=junior)
    with pytest.raises(Conflict) as full:
        services.review_item_claim(item_id=item.pk, user=lead)
    assert full.value.code == "fully_assigned"
    services.review_decision_submit(item_id=item.pk, user=senior, verdict="manipulated", confidence=0.9)
    item, _ = services.review_decision_submit(
        item_id=item.pk, user=junior, verdict="authentic", confidence=0.6, notes="Looks like the original."
    )
    assert item.status == ItemStatus.ESCALATED and item.disagreement and item.open_slots == 1
    with pytest.raises(Conflict) as again:
        services.review_item_claim(item_id=item.pk, user=junior)
    assert again.value.code == "already_decided"
    assert services.review_item_claim_next(user=lead) == item
    item, _ = services.review_decision_submit(item_id=item.pk, user=lead, verdict="manipulated", confidence=0.95)
    assert item.status == ItemStatus.DECIDED and item.final_verdict == "manipulated"


def test_a_lead_reassigns_and_takes_over(item_factory, senior, junior, lead) -> None:
    item = item_factory()
    services.review_item_claim(item_id=item.pk, user=junior)
    services.review_item_assign(item_id=item.pk, moderator=senior, by=lead)
    holders = list(
        ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).values_list(
            "moderator__username", flat=True
        )
    )
    assert holders == ["senior"]
    services.review_item_assign(item_id=item.pk, moderator=lead, by=lead)
    assert ReviewAssignment.objects.get(item=item, status=AssignmentStatus.ACTIVE).moderator == lead
    with pytest.raises(PermissionDenied):
        services.review_item_assign(item_id=item.pk, moderator=junior, by=senior)


def test_release_and_escalate_return_slots(item_factory, senior, lead) -> None:
    item = item_factory()
    services.review_item_claim(item_id=item.pk, user=senior)
    item = services.review_item_release(item_id=item.pk, user=senior)
    assert item.status == ItemStatus.PENDING and item.open_slots == 1
    services.review_item_claim(item_id=item.pk, user=senior)
    with pytest.raises(ValidationFailed):
        services.review_item_escalate(item_id=item.pk, user=senior, note="  ")
    item = services.review_item_escalate(item_id=item.pk, user=senior, note="Needs audio forensics.")
    assert item.status == ItemStatus.ESCALATED
    assert not ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).exists()


def test_the_batch_run_pushes_work_by_expertise_and_seniority(item_factory, policy, senior, junior) -> None:
    policy.auto_assign = True
    policy.save()
    faces = item_factory(priority="high", expertise=["face_manipulation"])
    critical = item_factory(priority="critical")
    plain = item_factory(priority="low", expertise=[])
    assert services.review_assignment_run() == 3
    holder = {a.item_id: a.moderator.username for a in ReviewAssignment.objects.select_related("moderator")}
    assert holder[critical.pk] == "senior" and holder[faces.pk] == "senior" and holder[plain.pk] == "junior"
    # A pushed item is what "next" hands its holder first.
    assert services.review_item_claim_next(user=senior) in (faces, critical)


def test_profiles_are_created_lazily_from_the_role(moderator, lead, admin_user) -> None:
    assert services.moderator_profile_ensure(user=moderator).seniority == "junior"
    assert services.moderator_profile_ensure(user=lead).seniority == "lead"
    admin_profile = services.moderator_profile_ensure(user=admin_user)
    assert admin_profile.seniority == "lead" and not admin_profile.is_active
    assert ModeratorProfile.objects.count() == 3


def test_working_hours_follow_the_moderators_time_zone(junior) -> None:
    profile = junior.moderator_profile
    profile.work_start, profile.work_end, profile.time_zone = dt.time(22), dt.time(6), "Atlantic/Reykjavik"
    at = dt.datetime(2025, 1, 1, 23, 0, tzinfo=dt.UTC)
    assert profile.is_on_shift(at)
    assert not profile.is_on_shift(at.replace(hour=12))


def test_the_batch_run_does_not_push_an_item_escalated_after_it_planned_to_a_non_lead(
    item_factory, policy, junior, monkeypatch
) -> None:
    policy.auto_assign = True
    policy.save()
    item = item_factory(priority="low", expertise=[])
    plan = services.algo.assign

    def plan_then_escalate(items, moderators):
        pairs = plan(items, moderators)
        assert pairs == [(str(item.pk), str(junior.pk))]
        # A reviewer escalates between the snapshot and the apply step.
        ReviewItem.objects.filter(pk=item.pk).update(status=ItemStatus.ESCALATED, open_slots=1)
        return pairs

    monkeypatch.setattr(services.algo, "assign", plan_then_escalate)
    assert services.review_assignment_run() == 0
    assert not ReviewAssignment.objects.filter(item=item).exists()


@pytest.mark.parametrize("who", ["junior", "senior", "lead"])
def test_pull_claims_named_claims_and_the_batch_plan_apply_one_seniority_rule(request, item_factory, who) -> None:
    user = request.getfixturevalue(who)
    profile = services.moderator_profile_ensure(user=user)
    items = []
    for priority in ("critical", "high", "medium", "low"):
        items.append(item_factory(priority=priority))
        escalated = item_factory(priority=priority)
        escalated.status = ItemStatus.ESCALATED
        escalated.save(update_fields=["status"])
        items.append(escalated)
    now = timezone.now()
    offered = set(services._claimable(user, profile, now))
    me = services._to_moderator_in(profile, load=0)
    for item in items:
        allowed = algo.seniority_refusal(profile.seniority, priority=item.priority, lead_only=item.lead_only) is None
        assert (item in offered) == allowed, (item.priority, item.status)
        assert algo.eligible(services._to_item_in(item, services.escalation_policy_active(), now), me) == allowed
        if allowed:
            services._check_eligible(item, profile)
        else:
            with pytest.raises(PermissionDenied):
                services._check_eligible(item, profile)
