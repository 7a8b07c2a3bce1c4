"""Every admin write is audited through one base (hlekkr.audit.admin.AuditedAdminMixin): a registered admin
without it fails here, and the edits the issue found unaudited now leave `admin.*` records."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client

from analysis.models import BankedHash, HashBank, ScoringPolicy
from hlekkr.accounts.models import User
from hlekkr.audit.admin import AuditedAdminMixin
from hlekkr.audit.models import AuditEvent
from hlekkr.ops.models import AlertRule
from review.models import EscalationPolicy, ModeratorProfile

# Admins allowed without the audited base, each with the reason. Empty: read-only admins use the base too,
# which costs nothing and keeps a later "allow delete" from slipping through unaudited.
EXEMPT: dict[type, str] = {}


def test_every_registered_admin_uses_the_audited_base() -> None:
    missing = sorted(
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdminMixin) and model not in EXEMPT
    )
    assert not missing, f"register these with hlekkr.audit.admin.AuditedModelAdmin (or exempt them): {missing}"


def test_no_admin_overrides_the_hooks_the_audit_rides_on() -> None:
    for model, model_admin in admin.site._registry.items():
        for hook in ("log_addition", "log_change", "log_deletions", "response_action"):
            assert getattr(type(model_admin), hook) is getattr(AuditedAdminMixin, hook), (model._meta.label, hook)


class _FormFields(HTMLParser):
    """What a browser would submit from the admin page's main form: inputs, checked boxes, selects, textareas."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data.strip("\n") if not self.data[self._textarea] else data


def _form(client: Client, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = _FormFields()
    parser.feed(response.content.decode())
    parser.data.pop("csrfmiddlewaretoken", None)
    return parser.data


def _post(client: Client, url: str, **changes: Any) -> None:
    data = {**_form(client, url), **changes}
    response = client.post(url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.content.decode()[:3000]


@pytest.fixture
def staff(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _events(action: str, model: type[Model]) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_type=model._meta.label_lower).order_by("id"))


def _changed_fields(event: AuditEvent) -> set[str]:
    return {field for change in event.payload["changes"] for field in change.get("changed", {}).get("fields", [])}


def test_an_escalation_policy_edit_is_audited_with_the_field_changed(staff: Client) -> None:
    policy = EscalationPolicy.objects.get(is_active=True)
    _post(staff, f"/admin/review/escalationpolicy/{policy.pk}/change/", trust_threshold="65")
    (event,) = _events("admin.changed", EscalationPolicy)
    assert event.object_id == str(policy.pk) and event.actor_repr == "admin"
    assert any("trust" in field.lower() for field in _changed_fields(event))


def test_a_moderator_profile_edit_is_audited(staff: Client, moderator: User) -> None:
    profile = ModeratorProfile.objects.create(user=moderator, seniority="junior")
    _post(staff, f"/admin/review/moderatorprofile/{profile.pk}/change/", seniority="senior")
    (event,) = _events("admin.changed", ModeratorProfile)
    assert _changed_fields(event) == {"Seniority"}


def test_hash_banks_and_their_inline_hashes_are_audited(staff: Client) -> None:
    _post(staff, "/admin/analysis/hashbank/add/", name="fakes", kind="known_fake", is_active="on")
    bank = HashBank.objects.get(name="fakes")
    assert _events("admin.added", HashBank)[0].object_id == str(bank.pk)
    url = f"/admin/analysis/hashbank/{bank.pk}/change/"
    row = {"hashes-TOTAL_FORMS": "1", "hashes-0-pdq_hash": "f" * 64, "hashes-0-quality": "90", "hashes-0-label": "x"}
    _post(staff, url, **row)
    assert BankedHash.objects.filter(bank=bank).count() == 1
    (event,) = _events("admin.changed", HashBank)
    assert [change["added"]["name"] for change in event.payload["changes"] if "added" in change] == ["banked hash"]


def test_a_scoring_policy_edit_that_is_not_an_activation_is_audited(staff: Client) -> None:
    policy = ScoringPolicy.objects.create(version=7, bias=1.0)
    _post(staff, f"/admin/analysis/scoringpolicy/{policy.pk}/change/", bias="0.5")
    (event,) = _events("admin.changed", ScoringPolicy)
    assert _changed_fields(event) == {"Bias"}


def test_an_admin_password_change_is_audited_without_the_password(staff: Client, client_a: User) -> None:
    url = f"/admin/accounts/user/{client_a.pk}/password/"
    new = "an-entirely-new-passphrase-42"
    response = staff.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    client_a.refresh_from_db()
    assert client_a.check_password(new)
    (event,) = _events("admin.changed", User)
    assert event.object_id == str(client_a.pk) and _changed_fields(event)
    assert new not in str(event.payload) and client_a.password not in str(event.payload)


def test_a_bulk_delete_is_audited_per_row(staff: Client, moderator: User, lead: User) -> None:
    profiles = [ModeratorProfile.objects.create(user=user) for user in (moderator, lead)]
    response = staff.post(
        "/admin/review/moderatorprofile/",
        {"action": "delete_selected", "_selected_action": [p.pk for p in profiles], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ModeratorProfile.objects.exists()
    assert sorted(e.object_id for e in _events("admin.deleted", ModeratorProfile)) == sorted(
        str(p.pk) for p in profiles
    )


def test_list_editable_rows_are_audited(staff: Client) -> None:
    rule = AlertRule.objects.order_by("pk").first()
    assert rule is not None
    data = _form(staff, "/admin/ops/alertrule/")
    index = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == str(rule.pk))
    data[f"form-{index}-threshold"] = str(float(rule.threshold) + 1)
    response = staff.post("/admin/ops/alertrule/", {**data, "_save": "Save"})
    assert response.status_code == 302
    events = _events("admin.changed", AlertRule)
    assert [e.object_id for e in events] == [str(rule.pk)]
