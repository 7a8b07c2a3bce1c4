"""Review fixtures: a policy with push assignment off, moderators of each seniority, an item factory."""

from __future__ import annotations

from typing import Any

import pytest

from hlekkr.accounts.models import Role, User
from review.models import EscalationPolicy, ModeratorProfile, ReviewItem
from tests.factories import PASSWORD, make_item


@pytest.fixture
def policy(db: Any) -> EscalationPolicy:
    """The active policy with push assignment off, so tests decide who holds what."""
    policy = EscalationPolicy.objects.get(is_active=True)
    policy.auto_assign = False
    policy.save()
    return policy


@pytest.fixture
def senior(db: Any) -> User:
    user = User.objects.create_user(username="senior", password=PASSWORD, role=Role.MODERATOR)
    ModeratorProfile.objects.create(user=user, seniority="senior", expertise={"image": 4, "face_manipulation": 5})
    return user


@pytest.fixture
def junior(db: Any) -> User:
    user = User.objects.create_user(username="junior", password=PASSWORD, role=Role.MODERATOR)
    ModeratorProfile.objects.create(user=user, seniority="junior", expertise={"image": 2})
    return user


@pytest.fixture
def item_factory(client_a: User, policy: EscalationPolicy):
    def make(**kwargs: Any) -> ReviewItem:
        return make_item(client_a, **kwargs)

    return make
