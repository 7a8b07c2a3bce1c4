"""Playwright drives Debian's Chromium against the live server: moderator claims, studies and decides; a lead
reassigns. Screenshots of the queue and item pages land in test-artifacts/ (git-ignored)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_factories import PASSWORD, make_item

from review.models import AssignmentStatus, ItemStatus, ReviewAssignment, ReviewItem

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API keeps an event loop on this thread; the ORM calls in the test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI must run browser tests: {CHROMIUM} is missing")
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


def login(browser: Any, live_server: Any, username: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.errors = errors
    page.goto(f"{live_server.url}/dashboard/")
    assert "/dashboard/login/" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/dashboard/")
    return page


def store_image(item: ReviewItem) -> None:
    """A real PNG behind the item, so the page shows (and screenshots) actual media."""
    import io

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 320), (40, 110, 160))
    ImageDraw.Draw(image).ellipse((140, 60, 340, 260), fill=(230, 200, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    default_storage.save(item.media.storage_key, ContentFile(buffer.getvalue()))


def no_policy_push() -> None:
    from review.models import EscalationPolicy

    EscalationPolicy.objects.filter(is_active=True).update(auto_assign=False)


def test_a_moderator_claims_studies_and_decides(browser, live_server, client_a, senior) -> None:
    no_policy_push()
    item = make_item(client_a, priority="high", probability=0.9)
    store_image(item)
    ARTIFACTS.mkdir(exist_ok=True)
    page = login(browser, live_server, "senior")
    assert page.get_by_role("heading", name="Review queue").is_visible()
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
    page.get_by_label("Priority").select_option("high")  # htmx swaps the rows in place
    page.wait_for_timeout(300)
    page.get_by_role("link", name=str(item.pk)[:8]).click()
    page.get_by_role("button", name="Claim").click()
    # Study: the media is guarded until revealed on click.
    frame = page.locator("[data-wellness]")
    assert "revealed" not in (frame.get_attribute("class") or "")
    page.get_by_role("button", name="Reveal media").click()
    assert "revealed" in (frame.get_attribute("class") or "")
    page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)
    # Keyboard: m picks "manipulated", 9 sets confidence 0.9, Ctrl+Enter submits.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("m")
    page.keyboard.press("9")
    assert page.locator('input[name="confidence"]').input_value() == "0.9"
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"{live_server.url}/dashboard/mine/")
    assert "Decided: manipulated" in page.content()
    item.refresh_from_db()
    assert item.status == ItemStatus.DECIDED and item.final_verdict == "manipulated"
    assert not page.errors, page.errors


def test_a_lead_reassigns_an_item(browser, live_server, client_a, lead, junior, senior) -> None:
    no_policy_push()
    item = make_item(client_a, priority="medium")
    store_image(item)
    from review.services import review_item_claim

    review_item_claim(item_id=item.pk, user=junior)
    page = login(browser, live_server, "lead")
    page.get_by_role("link", name="Lead").click()
    assert page.get_by_role("heading", name="Lead desk").is_visible()
    page.goto(f"{live_server.url}/dashboard/items/{item.pk}/")
    page.get_by_label("Assign to").select_option("senior")
    page.get_by_role("button", name="Assign").click()
    page.wait_for_load_state()
    assert "Assigned to senior" in page.content()
    active = ReviewAssignment.objects.get(item=item, status=AssignmentStatus.ACTIVE)
    assert active.moderator == senior
    assert ReviewItem.objects.get(pk=item.pk).status == ItemStatus.ASSIGNED
    assert not page.errors, page.errors
