"""Playwright drives Debian's Chromium against the live server: moderator claims, studies and decides; a lead
reassigns. Screenshots of the queue and item pages land in test-artifacts/ (git-ignored)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from review.models import AssignmentStatus, ItemStatus, ReviewAssignment, ReviewItem
from tests.factories import PASSWORD, make_item

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"  # MPL-2.0, see its README
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


def login(browser: Any, live_server: Any, username: str, *, fake_clock: bool = False) -> Any:
    """A logged-in page whose `errors` collect page errors, 4xx/5xx responses and Content-Security-Policy
    violations (Chromium reports each one on the console)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    if fake_clock:
        page.clock.install()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
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


def axe_violations(page: Any) -> list[str]:
    """Serious and critical axe-core findings on the page as it is now (WCAG 2.1 A/AA rules). axe is evaluated
    through the DevTools protocol, which a page's CSP does not govern, so the page keeps its real policy."""
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
                                    resultTypes: ["violations"]})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_the_dashboard_sends_a_strict_csp_and_works_under_it(browser, live_server, client_a, lead) -> None:
    no_policy_push()
    item = make_item(client_a, priority="high", probability=0.9)
    store_image(item)
    page = login(browser, live_server, "lead")
    response = page.goto(f"{live_server.url}/dashboard/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    page.get_by_label("Priority").select_option("high")  # an htmx request and swap under the policy
    page.wait_for_timeout(300)
    page.get_by_role("link", name=str(item.pk)[:8]).click()
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Reveal media").click()  # dashboard.js, and the media under img-src
    assert page.locator("#media-image").evaluate("img => img.naturalWidth") == 480
    page.goto(f"{live_server.url}/dashboard/status/")
    assert page.get_by_role("heading", name="System status").is_visible()
    assert not page.errors, page.errors
    # The listener does see violations: an injected inline script is refused and reported.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = '1'; document.body.append(s); }")
    page.wait_for_timeout(200)
    assert any("Content Security Policy" in e for e in page.errors)


def test_queue_item_and_status_pages_have_no_serious_accessibility_violations(
    browser, live_server, client_a, lead
) -> None:
    no_policy_push()
    item = make_item(client_a, priority="high", probability=0.9)
    store_image(item)
    page = login(browser, live_server, "lead")
    found = {"queue": axe_violations(page)}
    page.goto(f"{live_server.url}/dashboard/items/{item.pk}/")
    page.get_by_role("button", name="Claim").click()
    page.wait_for_load_state()
    found["item"] = axe_violations(page)
    page.goto(f"{live_server.url}/dashboard/status/")
    found["status"] = axe_violations(page)
    assert found == {"queue": [], "item": [], "status": []}
    assert not page.errors, page.errors


def test_single_key_shortcuts_can_be_turned_off_and_stay_off(browser, live_server, client_a, senior) -> None:
    no_policy_push()
    item = make_item(client_a, priority="high", probability=0.9)
    store_image(item)
    from review.services import review_item_claim

    review_item_claim(item_id=item.pk, user=senior)
    page = login(browser, live_server, "senior")
    page.goto(f"{live_server.url}/dashboard/items/{item.pk}/")
    toggle = page.get_by_label("Single-key shortcuts")
    assert toggle.is_checked()
    toggle.uncheck()
    page.reload()  # the choice is kept (per browser)
    assert not page.get_by_label("Single-key shortcuts").is_checked()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("m")
    page.keyboard.press("9")
    assert not page.locator('#decision-form input[value="manipulated"]').is_checked()
    assert page.locator('input[name="confidence"]').input_value() != "0.9"
    page.get_by_label("Single-key shortcuts").check()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("m")
    assert page.locator('#decision-form input[value="manipulated"]').is_checked()
    assert not page.errors, page.errors


def test_the_queue_poll_waits_while_focus_is_in_the_table(browser, live_server, client_a, senior) -> None:
    no_policy_push()
    first = make_item(client_a, priority="high")
    page = login(browser, live_server, "senior", fake_clock=True)
    page.mouse.move(2, 2)
    rows = page.locator("#queue-rows tr[data-item]")
    assert rows.count() == 1
    link = page.get_by_role("link", name=str(first.pk)[:8])
    link.focus()
    make_item(client_a, priority="low")
    page.clock.fast_forward(31_000)  # the poll is due, but a keyboard user is in the table
    page.wait_for_timeout(500)
    assert rows.count() == 1
    assert page.evaluate("() => document.activeElement.textContent") == link.text_content()
    page.get_by_role("button", name="Take next item").focus()  # leaving the table lets the update through
    page.wait_for_function("() => document.querySelectorAll('#queue-rows tr[data-item]').length === 2")
    assert page.locator("#queue-status").text_content() == "Queue updated: 2 items shown."
    assert page.locator("#queue-status").get_attribute("aria-live") == "polite"
    assert not page.errors, page.errors
