"""The server-rendered dashboard: who gets in, the pages render, forms act, no inline scripts."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from review.models import AssignmentStatus, ItemStatus, ReviewAssignment, ReviewItem
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_moderator_logs_in_through_the_form(moderator) -> None:
    client = Client()
    page = client.get("/dashboard/", follow=True)
    assert page.redirect_chain[-1][0].startswith("/dashboard/login/")
    response = client.post(
        "/dashboard/login/?next=/dashboard/",
        {"username": "moderator", "password": PASSWORD, "next": "/dashboard/"},
        follow=True,
    )
    assert response.status_code == 200 and response.request["PATH_INFO"] == "/dashboard/"
    assert b"Review queue" in response.content


def test_a_client_is_turned_away_at_the_login_form_and_by_the_pages(client_a) -> None:
    client = Client()
    response = client.post("/dashboard/login/", {"username": "client_a", "password": PASSWORD, "next": "/dashboard/"})
    assert response.status_code == 200 and b"This dashboard is for moderators" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/dashboard/").status_code == 302
    assert logged_in(client_a).get("/dashboard/").status_code == 403


def test_the_queue_page_filters_and_keeps_its_query_count(senior, item_factory, django_assert_max_num_queries) -> None:
    for priority in ("critical", "high", "low"):
        item_factory(priority=priority)
    client = logged_in(senior)
    client.get("/dashboard/")  # first visit creates nothing (profile exists) but warms the session
    with django_assert_max_num_queries(10):
        page = client.get("/dashboard/")
    body = page.content.decode()
    assert body.count('class="prio critical"') >= 1 and "3</strong> open" in body
    assert not INLINE_SCRIPT.search(body) and not INLINE_HANDLER.search(body)
    for _ in range(10):
        item_factory()
    with django_assert_max_num_queries(10):
        client.get("/dashboard/")
    rows = client.get("/dashboard/queue/rows/?priority=low").content.decode()
    assert rows.count("<tr") == 1
    depth = client.get("/dashboard/queue/depth/").content.decode()
    assert 'hx-trigger="every 10s"' in depth


def test_claim_study_and_decide_through_the_pages(senior, item_factory) -> None:
    item = item_factory(probability=0.9)
    client = logged_in(senior)
    page = client.get(f"/dashboard/items/{item.pk}/").content.decode()
    assert 'id="claim"' in page and "blurred" in page
    assert not INLINE_SCRIPT.search(page) and not INLINE_HANDLER.search(page)
    client.post(f"/dashboard/items/{item.pk}/claim/")
    page = client.get(f"/dashboard/items/{item.pk}/").content.decode()
    assert 'id="decision-form"' in page and "heartbeat" in page
    assert client.post(f"/dashboard/items/{item.pk}/heartbeat/").status_code == 200
    response = client.post(
        f"/dashboard/items/{item.pk}/decide/", {"verdict": "authentic", "confidence": "0.9"}, follow=True
    )
    assert "Notes are required" in response.content.decode()
    client.post(f"/dashboard/items/{item.pk}/decide/", {"verdict": "manipulated", "confidence": "0.9"})
    item.refresh_from_db()
    assert item.status == ItemStatus.DECIDED


def test_the_dashboard_needs_csrf_tokens(senior, item_factory) -> None:
    item = item_factory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(senior)
    assert client.post(f"/dashboard/items/{item.pk}/claim/").status_code == 403


def test_take_next_and_my_work(junior, item_factory) -> None:
    item = item_factory()
    client = logged_in(junior)
    response = client.post("/dashboard/next/")
    assert response.status_code == 302 and response["Location"] == f"/dashboard/items/{item.pk}/"
    assert str(item.pk)[:8] in client.get("/dashboard/mine/").content.decode()
    response = client.post("/dashboard/next/", follow=True)
    assert "No review item is waiting" in response.content.decode()


def test_leads_reassign_and_see_their_desk(lead, junior, senior, item_factory) -> None:
    item = item_factory()
    logged_in(junior).post(f"/dashboard/items/{item.pk}/claim/")
    client = logged_in(lead)
    assert client.get("/dashboard/lead/").status_code == 200
    client.post(f"/dashboard/items/{item.pk}/assign/", {"moderator": "senior"})
    assert ReviewAssignment.objects.get(item=item, status=AssignmentStatus.ACTIVE).moderator == senior
    assert logged_in(junior).get("/dashboard/lead/").status_code == 403
    assert logged_in(junior).post(f"/dashboard/items/{item.pk}/assign/", {"moderator": "junior"}).status_code == 403


def test_stats_page(senior, item_factory) -> None:
    item = item_factory()
    client = logged_in(senior)
    client.post(f"/dashboard/items/{item.pk}/claim/")
    client.post(f"/dashboard/items/{item.pk}/decide/", {"verdict": "manipulated", "confidence": "0.8"})
    page = client.get("/dashboard/stats/").content.decode()
    assert "Decisions per moderator" in page and "senior" in page and "100 %" in page


def test_the_lead_desk_keeps_its_query_count_as_lists_grow(
    lead, junior, item_factory, django_assert_max_num_queries
) -> None:
    def fill() -> None:
        for _ in range(3):
            item_factory(priority="high")
            escalated = item_factory()
            ReviewItem.objects.filter(pk=escalated.pk).update(status=ItemStatus.ESCALATED, disagreement=True)
            decided = item_factory()
            ReviewItem.objects.filter(pk=decided.pk).update(status=ItemStatus.DECIDED, inconsistency=True)
        logged_in(junior).post(f"/dashboard/items/{item_factory().pk}/claim/")

    client = logged_in(lead)
    fill()
    client.get("/dashboard/lead/")
    # 9 for the desk, 2 for gold accuracy (the policy and one grouped query), whatever the rows.
    with django_assert_max_num_queries(11):
        page = client.get("/dashboard/lead/")
    assert page.status_code == 200 and "No escalations." not in page.content.decode()
    fill()
    with django_assert_max_num_queries(11):
        assert client.get("/dashboard/lead/").status_code == 200


def test_releasing_through_the_page_returns_to_the_queue_and_a_second_release_is_refused(senior, item_factory) -> None:
    item = item_factory()
    client = logged_in(senior)
    client.post(f"/dashboard/items/{item.pk}/claim/")
    released = client.post(f"/dashboard/items/{item.pk}/release/")
    assert released.status_code == 302 and released["Location"] == "/dashboard/"
    assert not ReviewAssignment.objects.filter(item=item, status=AssignmentStatus.ACTIVE).exists()
    again = client.post(f"/dashboard/items/{item.pk}/release/", follow=True)
    assert again.redirect_chain[0][0] == f"/dashboard/items/{item.pk}/"
    assert "You do not hold this item." in again.content.decode()


def test_the_item_page_keeps_its_query_count_and_only_leads_get_the_assign_form(
    senior, junior, lead, item_factory, django_assert_max_num_queries
) -> None:
    item = item_factory()
    client = logged_in(senior)
    client.post(f"/dashboard/items/{item.pk}/claim/")
    with django_assert_max_num_queries(9):
        page = client.get(f"/dashboard/items/{item.pk}/")
    assert page.status_code == 200 and 'name="moderator"' not in page.content.decode()
    lead_page = logged_in(lead).get(f"/dashboard/items/{item.pk}/").content.decode()
    assert 'name="moderator"' in lead_page and "junior (moderator)" in lead_page


def test_the_item_page_says_nothing_found_is_not_proof(senior, item_factory) -> None:
    item = item_factory()
    ReviewItem.objects.filter(pk=item.pk).update(machine_verdict="no_manipulation_found")
    page = logged_in(senior).get(f"/dashboard/items/{item.pk}/").content.decode()
    assert "no_manipulation_found" in page and "not proof of authenticity" in page


def test_every_localising_detectors_map_can_be_overlaid_on_the_image(senior, item_factory) -> None:
    from analysis.models import DetectorResult

    item = item_factory(probability=0.9)
    for detector, name in (
        ("ela", "ela_heatmap.png"),
        ("copy_move", "copy_move_mask.png"),
        ("jpeg_local", "jpeg_local_heatmap.png"),
        ("double_jpeg", "double_jpeg_heatmap.png"),
    ):
        DetectorResult.objects.create(
            analysis=item.analysis,
            detector=detector,
            detector_version="1",
            status="ok",
            score=0.7,
            artifacts=[{"name": name, "content_type": "image/png", "storage_key": f"{item.media.storage_key}-{name}"}],
        )
    page = logged_in(senior).get(f"/dashboard/items/{item.pk}/").content.decode()
    for detector in ("ela", "copy_move", "jpeg_local", "double_jpeg"):
        assert f'id="overlay-{detector}"' in page
        assert f'aria-controls="overlay-{detector}"' in page
    assert "Show copy-move mask" in page
    assert not INLINE_SCRIPT.search(page) and not INLINE_HANDLER.search(page)
