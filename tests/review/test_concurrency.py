"""Concurrent pull claims on PostgreSQL: SKIP LOCKED hands every slot to exactly one moderator."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from typing import Any, cast

import pytest
from django.db import connection
from django.utils import timezone

from analysis.models import Analysis
from hlekkr.accounts.models import Role, User
from hlekkr.exceptions import HlekkrError
from media.models import MediaItem
from review.models import AssignmentStatus, ModeratorProfile, ReviewAssignment, ReviewItem
from review.services import (
    review_assignment_renew,
    review_assignment_run,
    review_item_claim,
    review_item_claim_next,
    review_leases_expire,
)
from tests.factories import ModeratorProfileFactory, make_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def seed_items(owner: User, count: int) -> None:
    media = MediaItem.objects.bulk_create(
        [MediaItem(owner=owner, kind="image", sha256=uuid.uuid4().hex * 2, status="stored") for _ in range(count)]
    )
    analyses = Analysis.objects.bulk_create(
        [
            Analysis(media=m, run_number=1, status="completed", manipulation_probability=0.8, trust_score=20)
            for m in media
        ]
    )
    now = timezone.now()
    priorities = ["critical", "high", "medium", "low"]
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                analysis=a,
                media=a.media,
                priority=priorities[i % 4],
                priority_rank=i % 4,
                required_expertise=["image"],
                due_at=now + dt.timedelta(minutes=i),
                kind="image",
                machine_probability=0.8,
                machine_trust_score=20,
                machine_confidence=0.7,
            )
            for i, a in enumerate(analyses)
        ]
    )


def test_fifty_concurrent_claimers_never_share_a_slot(client_a: User) -> None:
    _no_push()
    seed_items(client_a, 1000)
    moderators = []
    for n in range(50):
        user = User.objects.create_user(username=f"mod{n}", password="x" * 16, role=Role.MODERATOR)
        ModeratorProfile.objects.create(user=user, seniority="lead" if n % 2 else "senior", expertise={"image": n % 6})
        moderators.append(user)
    barrier = threading.Barrier(len(moderators))
    claimed: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(user: User) -> None:
        try:
            barrier.wait()
            while True:
                try:
                    item = review_item_claim_next(user=user)
                except HlekkrError as exc:
                    assert exc.code in ("at_capacity", "queue_empty"), exc.code
                    break
                with lock:
                    claimed.append((str(item.pk), user.username))
        except BaseException as exc:  # surface failures from the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in moderators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    expected = sum(m.moderator_profile.capacity for m in moderators)
    assert len(claimed) == expected
    per_item = Counter(item_id for item_id, _ in claimed)
    assert max(per_item.values()) == 1
    active = ReviewAssignment.objects.filter(status=AssignmentStatus.ACTIVE)
    assert active.count() == expected
    assert ReviewItem.objects.filter(open_slots=0).count() == expected
    assert ReviewItem.objects.filter(status="assigned").count() == expected
    assert Counter(a for _, a in claimed) == {m.username: m.moderator_profile.capacity for m in moderators}


def _at_once(work: list[Any]) -> list[BaseException]:
    """Run each callable on its own thread, released together; the unexpected exceptions they raised."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            barrier.wait()
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def _moderators(count: int, seniority: str = "senior") -> list[User]:
    profiles = [ModeratorProfileFactory(user__username=f"m{n}", seniority=seniority) for n in range(count)]
    return [cast(ModeratorProfile, p).user for p in profiles]


def _no_push() -> None:
    """Push assignment off. Through the service: a transactional test before this one may have flushed the
    policy row the data migration made, and the service recreates it (with push on)."""
    from review.services import escalation_policy_active

    policy = escalation_policy_active()
    policy.auto_assign = False
    policy.save(update_fields=["auto_assign"])


def _assert_slots_add_up() -> None:
    for item in ReviewItem.objects.all():
        held = ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).count()
        decided = item.decisions.count()
        if item.status in ("pending", "assigned"):
            assert item.open_slots == item.reviewers_required - held - decided, item.pk


def test_concurrent_named_claims_of_a_one_slot_item_give_it_to_one_moderator(client_a: User) -> None:
    _no_push()
    item = make_item(client_a, priority="high")
    moderators = _moderators(10)
    outcomes: list[str] = []

    def claim(user: User) -> Any:
        def run() -> None:
            try:
                review_item_claim(item_id=item.pk, user=user)
                outcomes.append("claimed")
            except HlekkrError as exc:
                outcomes.append(exc.code)

        return run

    assert not _at_once([claim(user) for user in moderators])
    assert sorted(outcomes) == ["claimed"] + ["fully_assigned"] * 9
    assert ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).count() == 1
    _assert_slots_add_up()


def test_the_batch_run_and_pull_claims_together_never_overfill_an_item_or_a_moderator(client_a: User) -> None:
    for n in range(120):
        make_item(client_a, priority=("high", "medium", "low")[n % 3], reviewers=1 + (n % 5 == 0))
    moderators = _moderators(8)

    def pull(user: User) -> Any:
        def run() -> None:
            for _ in range(10):
                try:
                    review_item_claim_next(user=user)
                except HlekkrError as exc:
                    assert exc.code in ("at_capacity", "queue_empty"), exc.code
                    return

        return run

    errors = _at_once([review_assignment_run, review_assignment_run] + [pull(user) for user in moderators])
    assert not errors, errors[:3]
    for item in ReviewItem.objects.all():
        holders = list(
            ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).values_list(
                "moderator", flat=True
            )
        )
        assert len(holders) <= item.reviewers_required and len(set(holders)) == len(holders)
    for user in moderators:
        held = ReviewAssignment.objects.filter(moderator=user, status=AssignmentStatus.ACTIVE).count()
        assert held == user.moderator_profile.capacity  # 120 items: everyone ends full
    _assert_slots_add_up()


def test_a_lease_renewed_while_it_expires_is_either_renewed_or_returned_never_both(client_a: User) -> None:
    _no_push()
    (user,) = _moderators(1)
    for _ in range(15):
        item = make_item(client_a, priority="medium")
        review_item_claim(item_id=item.pk, user=user)
        # Claimed 5 s ago: the expiry task runs with a clock just past that lease, the holder's heartbeat with the
        # real clock, so a renewal lands past the expiry's clock and the two are exclusive.
        assignment = ReviewAssignment.objects.get(item=item, status=AssignmentStatus.ACTIVE)
        assignment.lease_expires_at -= dt.timedelta(seconds=5)
        assignment.save(update_fields=["lease_expires_at"])
        later = assignment.lease_expires_at + dt.timedelta(seconds=1)
        renewed: list[Any] = []

        def expire(now: Any = later) -> None:
            review_leases_expire(now=now)

        def renew(item: ReviewItem = item, out: list[Any] = renewed) -> None:
            out.append(review_assignment_renew(item_id=item.pk, user=user))

        errors = _at_once([expire, renew])
        assert not errors, errors
        assignment.refresh_from_db()
        item.refresh_from_db()
        if assignment.status == AssignmentStatus.ACTIVE:
            assert renewed[0] is not None and item.open_slots == 0
        else:
            rows = list(ReviewAssignment.objects.filter(item=item).values_list("status", "lease_expires_at"))
            assert assignment.status == AssignmentStatus.EXPIRED and renewed[0] is None, rows
            assert item.open_slots == 1, (rows, item.status, later, timezone.now())
        ReviewAssignment.objects.filter(pk=assignment.pk).update(status=AssignmentStatus.RELEASED)
        ReviewItem.objects.filter(pk=item.pk).update(status="cancelled")


def test_concurrent_claimers_fill_two_reviewer_items_with_two_different_people(client_a: User) -> None:
    _no_push()
    for n in range(80):  # 160 slots for 30 seniors who hold 5 each: everyone ends full
        make_item(client_a, priority=("high", "medium", "low")[n % 3], reviewers=2)
    moderators = _moderators(30)
    claimed: list[tuple[str, str]] = []

    def pull(user: User) -> Any:
        def run() -> None:
            while True:
                try:
                    item = review_item_claim_next(user=user)
                except HlekkrError as exc:
                    assert exc.code in ("at_capacity", "queue_empty"), exc.code
                    return
                claimed.append((str(item.pk), user.username))

        return run

    errors = _at_once([pull(user) for user in moderators])
    assert not errors, errors[:3]
    assert len(claimed) == len(set(claimed)) == 30 * 5
    per_item = Counter(item_id for item_id, _ in claimed)
    assert max(per_item.values()) <= 2
    for item in ReviewItem.objects.all():
        holders = list(
            ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).values_list(
                "moderator", flat=True
            )
        )
        assert len(holders) == per_item.get(str(item.pk), 0) and len(set(holders)) == len(holders)
    _assert_slots_add_up()
