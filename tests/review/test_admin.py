"""The admin shows review state read-only and without a query per row."""

from __future__ import annotations

import pytest
from django.test import Client

from review import services

pytestmark = pytest.mark.django_db


def test_review_items_cannot_be_deleted_through_the_admin(admin_user, item_factory) -> None:
    item = item_factory()
    client = Client()
    client.force_login(admin_user)
    assert client.get(f"/admin/review/reviewitem/{item.pk}/change/").status_code == 200
    assert client.get(f"/admin/review/reviewitem/{item.pk}/delete/").status_code == 403
    assert client.post(f"/admin/review/reviewitem/{item.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(item).objects.filter(pk=item.pk).exists()


def test_admin_pages_keep_their_query_count_as_rows_grow(
    admin_user, senior, junior, lead, item_factory, django_assert_max_num_queries
) -> None:
    item = item_factory()
    for user in (senior, junior, lead):
        services.moderator_profile_ensure(user=user)
    client = Client()
    client.force_login(admin_user)
    client.get("/admin/review/moderatorprofile/")
    with django_assert_max_num_queries(8):
        assert client.get("/admin/review/moderatorprofile/").status_code == 200
    # Warm the content-type cache for this page too: a transactional test run before this one on the same
    # worker flushes the database, which empties that cache (one extra query the first time, not per row).
    client.get(f"/admin/review/reviewitem/{item.pk}/change/")
    services.review_item_claim(item_id=item.pk, user=senior)
    services.review_item_assign(item_id=item.pk, moderator=junior, by=lead, replace=senior)
    with django_assert_max_num_queries(7):
        assert client.get(f"/admin/review/reviewitem/{item.pk}/change/").status_code == 200
    services.review_item_assign(item_id=item.pk, moderator=lead, by=lead, replace=junior)
    with django_assert_max_num_queries(7):
        assert client.get(f"/admin/review/reviewitem/{item.pk}/change/").status_code == 200
