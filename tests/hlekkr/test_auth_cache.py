"""Users and API keys are remembered for a few seconds per process (hlekkr/accounts/auth_cache.py): a
deactivated user, a changed role or a revoked key stops working within HLEKKR_AUTH_CACHE_SECONDS everywhere,
and at once in the process that made the change through a service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hlekkr.accounts import auth_cache
from hlekkr.accounts.models import ApiKey, Role, User
from hlekkr.accounts.services import api_key_create, api_key_revoke

ME = "/api/v1/auth/me/"
QUEUE = "/api/v1/review/queue/"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeClock:
    settings.HLEKKR_AUTH_CACHE_SECONDS = 5
    fake = FakeClock()
    monkeypatch.setattr(auth_cache.users, "clock", fake)
    monkeypatch.setattr(auth_cache.api_keys, "clock", fake)
    return fake


def _key_client(api: Any, user: User, scopes: list[str]) -> tuple[Any, ApiKey]:
    issued = api_key_create(user=user, name="ci", scopes=scopes)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    return api, issued.api_key


def test_a_cached_jwt_user_costs_no_query(
    api_as: Any, client_a: User, clock: FakeClock, django_assert_num_queries: Any
) -> None:
    api = api_as(client_a)
    assert api.get(ME).status_code == 200
    with django_assert_num_queries(0):
        assert api.get(ME).status_code == 200


def test_a_user_deactivated_elsewhere_is_refused_once_the_cache_seconds_pass(
    api_as: Any, client_a: User, clock: FakeClock
) -> None:
    api = api_as(client_a)
    assert api.get(ME).status_code == 200
    User.objects.filter(pk=client_a.pk).update(is_active=False)  # another process, no service call here
    clock.now += 4.9
    assert api.get(ME).status_code == 200  # the documented window
    clock.now += 0.2
    response = api.get(ME)
    assert response.status_code == 401


def test_a_role_changed_elsewhere_takes_effect_within_the_cache_seconds(
    api_as: Any, moderator: User, clock: FakeClock
) -> None:
    api = api_as(moderator)
    assert api.get(QUEUE).status_code == 200
    User.objects.filter(pk=moderator.pk).update(role=Role.CLIENT)
    clock.now += 5.1
    assert api.get(QUEUE).status_code == 403


def test_a_role_changed_in_admin_applies_at_once_in_this_process(
    api_as: Any, client: Any, moderator: User, admin_user: User, clock: FakeClock
) -> None:
    api = api_as(moderator)
    assert api.get(QUEUE).status_code == 200
    client.force_login(admin_user)
    url = f"/admin/accounts/user/{moderator.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    for name in ("date_joined", "last_login", "groups", "user_permissions"):
        data.pop(name, None)
    data.update({"role": "client", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    assert client.post(url, data).status_code == 302
    assert api.get(QUEUE).status_code == 403


def test_a_key_revoked_through_the_service_is_refused_at_once(api: Any, client_a: User, clock: FakeClock) -> None:
    api, key = _key_client(api, client_a, ["media:read"])
    assert api.get(ME).status_code == 200
    api_key_revoke(api_key=key)
    response = api.get(ME)
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_seconds_pass(
    api: Any, client_a: User, clock: FakeClock
) -> None:
    api, key = _key_client(api, client_a, ["media:read"])
    assert api.get(ME).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    clock.now += 5.1
    assert api.get(ME).status_code == 401


def test_a_cached_key_stops_at_its_expiry_not_seconds_later(
    api: Any, client_a: User, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    expiry = timezone.now() + timedelta(hours=1)
    issued = api_key_create(user=client_a, name="ci", scopes=["media:read"], expires_at=expiry)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert api.get(ME).status_code == 200
    assert api.get(ME).status_code == 200  # now from the cache
    # The expiry is read against the wall clock on every request: the cached row refuses it at once.
    import hlekkr.accounts.models as account_models

    monkeypatch.setattr(account_models.timezone, "now", lambda: expiry + timedelta(seconds=1))
    assert api.get(ME).status_code == 401


def test_a_key_whose_user_is_deactivated_elsewhere_is_refused_within_the_cache_seconds(
    api: Any, client_a: User, clock: FakeClock
) -> None:
    api, _ = _key_client(api, client_a, ["media:read"])
    assert api.get(ME).status_code == 200
    User.objects.filter(pk=client_a.pk).update(is_active=False)
    clock.now += 5.1
    assert api.get(ME).status_code == 401


def test_a_wrong_secret_for_a_cached_prefix_is_still_refused(api: Any, client_a: User, clock: FakeClock) -> None:
    api, key = _key_client(api, client_a, ["media:read"])
    assert api.get(ME).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key hk_{key.prefix}." + "x" * 43)
    assert api.get(ME).status_code == 401


def test_callers_get_their_own_copy_of_a_cached_user(api_as: Any, client_a: User, clock: FakeClock) -> None:
    loaded = auth_cache.users.get_or_load(client_a.pk, lambda: User.objects.get(pk=client_a.pk))
    loaded.role = Role.ADMIN  # a request scribbling on its user must not change the next request's
    again: User = auth_cache.users.get_or_load(client_a.pk, lambda: pytest.fail("must come from the cache"))
    assert again.role == Role.CLIENT and again is not loaded


def test_zero_seconds_turns_the_cache_off(
    api_as: Any, client_a: User, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.HLEKKR_AUTH_CACHE_SECONDS = 0
    api = api_as(client_a)
    api.get(ME)
    with django_assert_num_queries(1):
        assert api.get(ME).status_code == 200


def test_a_verified_token_is_not_verified_again_but_its_expiry_still_is(
    api_as: Any, client_a: User, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(client_a)
    api = api_as(client_a)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(ME).status_code == 200
    calls: list[Any] = []
    monkeypatch.setattr(AccessToken, "verify", lambda self: calls.append(self))
    assert api.get(ME).status_code == 200 and calls == []  # from the cache
    monkeypatch.undo()
    from datetime import UTC, datetime

    import rest_framework_simplejwt.tokens as simplejwt_tokens

    import hlekkr.accounts.authentication as authentication

    later = float(token["exp"]) + 3600
    monkeypatch.setattr(authentication.time, "time", lambda: later)
    monkeypatch.setattr(simplejwt_tokens, "aware_utcnow", lambda: datetime.fromtimestamp(later, tz=UTC))
    assert api.get(ME).status_code == 401  # (the code is token_expired when PyJWT's own clock says so)


def test_a_tampered_token_is_refused_though_the_genuine_one_is_cached(
    api_as: Any, client_a: User, client_b: User, clock: FakeClock
) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    genuine = str(AccessToken.for_user(client_a))
    api = api_as(client_a)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {genuine}")
    assert api.get(ME).status_code == 200
    header, _payload, signature = genuine.split(".")
    forged = ".".join([header, str(AccessToken.for_user(client_b)).split(".")[1], signature])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert api.get(ME).status_code == 401
