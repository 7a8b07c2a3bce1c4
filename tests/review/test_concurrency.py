"""Concurrent pull claims on PostgreSQL: SKIP LOCKED hands every slot to exactly one moderator."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from analysis.models import Analysis
from hlekkr.accounts.models import Role, User
from hlekkr.exceptions import HlekkrError
from media.models import MediaItem
from review.models import AssignmentStatus, ModeratorProfile, ReviewAssignment, ReviewItem
from review.services import review_item_claim_next

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
                due_at=now + timezone.timedelta(minutes=i),
                kind="image",
                machine_probability=0.8,
                machine_trust_score=20,
                machine_confidence=0.7,
            )
            for i, a in enumerate(analyses)
        ]
    )


def test_fifty_concurrent_claimers_never_share_a_slot(client_a: User) -> None:
    from review.models import EscalationPolicy

    EscalationPolicy.objects.filter(is_active=True).update(auto_assign=False)
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
