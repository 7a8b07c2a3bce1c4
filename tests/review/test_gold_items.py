"""Gold items: leads mark decided items, the next-item claim hands them out as ordinary-looking probes, a probe's
decision is scored and never reaches the media or clients, and leads see each moderator's accuracy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from hlekkr.accounts.models import Role, User
from hlekkr.audit.models import AuditEvent
from hlekkr.events import REVIEW_DECIDED, subscribe, unsubscribe
from hlekkr.webhooks.models import WebhookDelivery, WebhookEndpoint
from media.models import MediaItem
from review import services
from review.models import EscalationPolicy, GoldItem, GoldProbe, ItemStatus, ModeratorProfile, ReviewItem
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
BASE = "/api/v1/review"


def _moderator(name: str, seniority: str = "senior") -> User:
    user = User.objects.create_user(username=name, password=PASSWORD, role=Role.MODERATOR)
    ModeratorProfile.objects.create(user=user, seniority=seniority, expertise={"image": 4})
    return user


def _decided(item: ReviewItem, by: User, verdict: str = "manipulated") -> ReviewItem:
    services.review_item_claim(item_id=item.pk, user=by)
    decided, _ = services.review_decision_submit(
        item_id=item.pk, user=by, verdict=verdict, confidence=0.9, notes="checked the splice"
    )
    return decided


def _gold_rate(policy: EscalationPolicy, rate: float) -> None:
    policy.gold_rate = rate
    policy.save(update_fields=["gold_rate"])


@pytest.fixture
def lead_user(db: Any) -> User:
    user = User.objects.create_user(username="lead1", password=PASSWORD, role=Role.LEAD)
    ModeratorProfile.objects.create(user=user, seniority="lead", expertise={"image": 4})
    return user


@pytest.fixture
def gold(item_factory, senior, lead_user) -> GoldItem:
    item = _decided(item_factory(probability=0.85), senior)
    return services.gold_item_mark(item_id=item.pk, by=lead_user)


def test_a_lead_marks_a_decided_item_as_gold_and_it_is_audited(api_as, item_factory, senior, lead_user) -> None:
    item = _decided(item_factory(probability=0.85), senior)
    response = api_as(lead_user).post(f"{BASE}/items/{item.pk}/gold/", {"verdict": "manipulated"}, format="json")
    assert response.status_code == 201
    assert response.json()["verdict"] == "manipulated" and response.json()["marked_by"] == "lead1"
    assert AuditEvent.objects.filter(action="review.gold_marked", object_id=str(item.pk)).exists()
    again = api_as(lead_user).post(f"{BASE}/items/{item.pk}/gold/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_gold"


def test_a_moderator_cannot_mark_gold(api_as, item_factory, senior) -> None:
    item = _decided(item_factory(probability=0.85), senior)
    response = api_as(senior).post(f"{BASE}/items/{item.pk}/gold/", {}, format="json")
    assert response.status_code == 403
    assert not GoldItem.objects.exists()


def test_gold_needs_a_decided_item_and_a_clear_verdict(api_as, item_factory, senior, lead_user) -> None:
    lead_api = api_as(lead_user)
    open_item = item_factory()
    response = lead_api.post(f"{BASE}/items/{open_item.pk}/gold/", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "gold_item_not_decided"
    inconclusive = _decided(item_factory(probability=0.85), senior, verdict="inconclusive")
    response = lead_api.post(f"{BASE}/items/{inconclusive.pk}/gold/", {}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "gold_verdict_invalid"
    response = lead_api.post(f"{BASE}/items/{inconclusive.pk}/gold/", {"verdict": "inconclusive"}, format="json")
    assert response.status_code == 400


def test_a_lead_marks_gold_from_the_dashboard_and_a_moderator_is_refused(item_factory, senior, lead_user) -> None:
    item = _decided(item_factory(probability=0.85), senior)
    moderator = Client()
    moderator.force_login(senior)
    assert moderator.post(f"/dashboard/items/{item.pk}/gold/", {"verdict": "authentic"}).status_code == 403
    lead = Client()
    lead.force_login(lead_user)
    page = lead.get(f"/dashboard/items/{item.pk}/")
    assert b"Mark as gold" in page.content
    response = lead.post(f"/dashboard/items/{item.pk}/gold/", {"verdict": "authentic"})
    assert response.status_code == 302
    assert GoldItem.objects.get(item=item).verdict == "authentic"
    assert ReviewItem.objects.get(pk=item.pk).final_verdict == "manipulated"  # marking changes nothing


def test_next_hands_out_a_probe_that_looks_like_an_item_once_per_person(api_as, policy, gold) -> None:
    _gold_rate(policy, 1.0)
    junior_senior = _moderator("checked")
    moderator_api = api_as(junior_senior)
    response = moderator_api.post(f"{BASE}/next/")
    assert response.status_code == 200
    body = response.json()
    probe = GoldProbe.objects.get(moderator=junior_senior)
    assert body["id"] == str(probe.probe_item_id) != str(gold.item_id)
    assert body["decisions"] == [] and body["final_verdict"] is None and body["status"] == "assigned"
    assert body["media_id"] == str(gold.item.media_id)
    assert set(body) == set(api_as(junior_senior).get(f"{BASE}/items/{gold.item_id}/").json())
    # Nobody else sees the probe in the queue, nor can take it.
    other = _moderator("other")
    assert str(probe.probe_item_id) not in {row["id"] for row in api_as(other).get(f"{BASE}/queue/").json()["results"]}
    assert api_as(other).post(f"{BASE}/items/{probe.probe_item_id}/claim/").status_code == 404
    assert api_as(other).get(f"{BASE}/items/{probe.probe_item_id}/").status_code == 404
    other_page = Client()
    other_page.force_login(other)
    assert other_page.get(f"/dashboard/items/{probe.probe_item_id}/").status_code == 404
    # Decided, the same gold item is never handed to the same person again.
    moderator_api.post(
        f"{BASE}/items/{probe.probe_item_id}/decide/", {"verdict": "manipulated", "confidence": 0.8}, format="json"
    )
    again = moderator_api.post(f"{BASE}/next/")
    assert again.status_code == 404 and again.json()["code"] == "queue_empty"
    assert GoldProbe.objects.filter(moderator=junior_senior).count() == 1


def test_probes_never_go_to_those_who_decided_or_marked_the_original(api_as, policy, gold, senior, lead_user) -> None:
    _gold_rate(policy, 1.0)
    for person in (senior, lead_user):
        response = api_as(person).post(f"{BASE}/next/")
        assert response.status_code == 404, person.username
    assert not GoldProbe.objects.exists()


def test_at_rate_zero_no_probe_is_handed_out(api_as, policy, gold) -> None:
    _gold_rate(policy, 0.0)
    assert api_as(_moderator("checked")).post(f"{BASE}/next/").status_code == 404
    assert not GoldProbe.objects.exists()


def test_deciding_a_probe_scores_it_and_never_reaches_the_media_or_clients(
    api_as, policy, gold, client_a, django_capture_on_commit_callbacks
) -> None:
    _gold_rate(policy, 1.0)
    media = MediaItem.objects.get(pk=gold.item.media_id)
    verdict_before = media.final_verdict
    assert verdict_before == "manipulated"
    WebhookEndpoint.objects.create(
        owner=client_a, url="https://hooks.example.org/h", events=["review.decided"], secret="whsec-gold"
    )
    published: list[dict[str, Any]] = []

    def handler(event: str, payload: dict[str, Any]) -> None:
        published.append(payload)

    subscribe(REVIEW_DECIDED, handler, after_commit=False)
    try:
        checked = _moderator("checked")
        moderator_api = api_as(checked)
        probe_id = moderator_api.post(f"{BASE}/next/").json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            response = moderator_api.post(
                f"{BASE}/items/{probe_id}/decide/",
                {"verdict": "authentic", "confidence": 0.9, "notes": "looks clean to me"},
                format="json",
            )
    finally:
        unsubscribe(REVIEW_DECIDED, handler)
    assert response.status_code == 200 and response.json()["status"] == ItemStatus.DECIDED
    probe = GoldProbe.objects.get(moderator=checked)
    assert probe.verdict == "authentic" and probe.correct is False
    assert published == []
    assert not WebhookDelivery.objects.exists()
    media.refresh_from_db()
    assert media.final_verdict == verdict_before
    assert not AuditEvent.objects.filter(action="review.decided", object_id=probe_id).exists()
    assert AuditEvent.objects.filter(action="review.gold_probe_decided", object_id=probe_id).exists()


def test_stats_show_gold_accuracy_and_flag_a_weak_moderator_to_leads(
    api_as, policy, item_factory, senior, lead_user
) -> None:
    _gold_rate(policy, 1.0)
    policy.gold_min_probes = 2
    policy.save(update_fields=["gold_min_probes"])
    for _ in range(2):
        item = _decided(item_factory(probability=0.85), senior)
        services.gold_item_mark(item_id=item.pk, by=lead_user)
    weak, good = _moderator("weak"), _moderator("good")
    for person, verdict in ((weak, "authentic"), (good, "manipulated")):
        for _ in range(2):
            probe = services.review_item_claim_next(user=person)
            services.review_decision_submit(
                item_id=probe.pk, user=person, verdict=verdict, confidence=0.8, notes="my call"
            )
    lead = Client()
    lead.force_login(lead_user)
    page = lead.get("/dashboard/stats/").content.decode()
    assert "Accuracy on gold items" in page
    weak_row = page[page.index("<td>weak</td>") :].split("</tr>")[0]
    good_row = page[page.index("<td>good</td>") :].split("</tr>")[0]
    assert "0 %" in weak_row and "below threshold" in weak_row
    assert "100 %" in good_row and "below threshold" not in good_row
    desk = lead.get("/dashboard/lead/").content.decode()
    assert "Below the gold accuracy threshold: weak" in desk
    # Moderators see the queue figures, not their colleagues' accuracy; probes do not count as decisions.
    moderator = Client()
    moderator.force_login(good)
    assert "Accuracy on gold items" not in moderator.get("/dashboard/stats/").content.decode()
    from review.selectors import review_stats

    assert review_stats()["decided"] == 2


def test_gold_items_weigh_three_in_calibration(item_factory, senior, lead_user) -> None:
    from review.calibration_hooks import gold_label_weights

    agreed = _decided(item_factory(probability=0.85), senior)
    overruled = _decided(item_factory(probability=0.85), senior)
    services.gold_item_mark(item_id=agreed.pk, by=lead_user)
    services.gold_item_mark(item_id=overruled.pk, by=lead_user, verdict="authentic")
    weights = gold_label_weights([agreed.media_id, overruled.media_id])
    assert weights == {agreed.media_id: (3.0, "gold")}
