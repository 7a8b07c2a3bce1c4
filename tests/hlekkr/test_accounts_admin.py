"""Accounts in Django admin: API-key rules as form errors, audited edits of keys (name, expiry) and users."""

from __future__ import annotations

from typing import Any

import pytest

from hlekkr.accounts.models import ApiKey
from hlekkr.accounts.services import api_key_create
from hlekkr.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
ADD = "/admin/accounts/apikey/add/"


@pytest.mark.parametrize(
    ("scopes", "expires_at"),
    [('["media:read", "bogus"]', ""), ('"media:read"', ""), ("[]", ""), ('["media:read"]', "2001-01-01 00:00:00")],
)
def test_adding_a_key_with_bad_scopes_or_a_past_expiry_is_a_form_error(
    client: Any, admin_user: Any, client_a: Any, scopes: str, expires_at: str
) -> None:
    client.force_login(admin_user)
    data = {"user": client_a.pk, "name": "ci", "scopes": scopes, "expires_at_0": "", "expires_at_1": ""}
    if expires_at:
        data["expires_at_0"], data["expires_at_1"] = expires_at.split(" ")
    response = client.post(ADD, data)
    assert response.status_code == 200  # the form again, with the error, not a 500
    assert response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_adding_a_valid_key_shows_it_once(client: Any, admin_user: Any, client_a: Any) -> None:
    client.force_login(admin_user)
    data = {"user": client_a.pk, "name": "ci", "scopes": '["media:read"]', "expires_at_0": "", "expires_at_1": ""}
    response = client.post(ADD, data, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert any(f"hk_{key.prefix}." in str(m) for m in response.context["messages"])


def test_editing_a_key_changes_only_its_name_and_is_audited(client: Any, admin_user: Any, client_a: Any) -> None:
    issued = api_key_create(user=client_a, name="ci", scopes=["media:read"])
    client.force_login(admin_user)
    url = f"/admin/accounts/apikey/{issued.api_key.pk}/change/"
    data = {"name": "ci-renamed", "scopes": '["media:read", "media:write"]', "expires_at_0": "", "expires_at_1": ""}
    response = client.post(url, data)
    assert response.status_code == 302
    key = ApiKey.objects.get()
    assert key.name == "ci-renamed"
    assert key.scopes == ["media:read"]  # scopes are read-only after creation
    event = AuditEvent.objects.get(action="api_key.updated")
    assert event.payload["before"]["name"] == "ci" and event.payload["after"]["name"] == "ci-renamed"


def test_changing_a_role_in_admin_is_audited_without_the_password(client: Any, admin_user: Any, client_a: Any) -> None:
    client.force_login(admin_user)
    url = f"/admin/accounts/user/{client_a.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "role": "moderator",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "last_login_0": "",
            "last_login_1": "",
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)
    data.pop("groups", None)
    data.pop("user_permissions", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else b""
    client_a.refresh_from_db()
    assert client_a.role == "moderator"
    event = AuditEvent.objects.filter(action="admin.changed", object_type="accounts.user").get()
    assert event.object_id == str(client_a.pk)
    assert "Role" in {f for change in event.payload["changes"] for f in change.get("changed", {}).get("fields", [])}
    assert client_a.password not in str(event.payload)
