"""Every auth path: obtain, refresh with rotation, reuse of a rotated token, revoke, expiry, algorithms, API keys."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from hlekkr.accounts.models import ApiKey
from hlekkr.accounts.services import api_key_create, api_key_revoke
from hlekkr.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def obtain(api, username):
    return api.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD}, format="json")


def test_it_issues_a_token_pair_and_me_names_the_caller(api, client_a):
    response = obtain(api, "client_a")
    assert response.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    me = api.get("/api/v1/auth/me/").json()
    assert me == {"username": "client_a", "role": "client", "auth": "jwt", "scopes": None}


def test_it_refuses_a_wrong_password_in_the_error_shape(api, client_a):
    response = api.post("/api/v1/auth/token/", {"username": "client_a", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "details"}
    assert response.json()["code"] == "authentication_failed"


def test_refresh_rotates_and_reusing_the_old_token_revokes_every_session(api, client_a):
    pair = obtain(api, "client_a").json()
    other_session = obtain(api, "client_a").json()
    rotated = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != pair["refresh"]

    reuse = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "token_not_valid"
    # Theft assumed: the other session's and the freshly rotated refresh tokens are dead too.
    for refresh in (other_session["refresh"], rotated.json()["refresh"]):
        again = api.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
        assert again.status_code == 401
    assert AuditEvent.objects.filter(action="auth.refresh_tokens_revoked").exists()


def test_revoke_blacklists_one_refresh_token(api, client_a):
    pair = obtain(api, "client_a").json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert api.post("/api/v1/auth/token/revoke/", {"refresh": pair["refresh"]}, format="json").status_code == 204
    api.credentials()
    assert api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_revoke_refuses_someone_elses_refresh_token(api, client_a, client_b):
    mine = obtain(api, "client_a").json()
    theirs = obtain(api, "client_b").json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {mine['access']}")
    response = api.post("/api/v1/auth/token/revoke/", {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"refresh": "garbage"}, "token_not_valid"),
        ({}, "nothing_to_revoke"),
        ({"everywhere": "maybe"}, "validation_error"),
    ],
)
def test_revoke_refuses_bad_input_in_the_error_shape(api, client_a, body, code):
    pair = obtain(api, "client_a").json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    response = api.post("/api/v1/auth/token/revoke/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "details"}
    assert response.json()["code"] == code


def test_an_expired_access_token_says_token_expired(api, client_a):
    token = AccessToken.for_user(client_a)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=5))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("algorithm", ["none", "HS512"])
def test_tokens_signed_with_another_algorithm_are_refused(api, client_a, algorithm):
    payload = dict(AccessToken.for_user(client_a).payload)
    if algorithm == "none":
        forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
    else:
        forged = jwt.encode(payload, str(settings.SIMPLE_JWT["SIGNING_KEY"]), algorithm=algorithm)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_token_signed_with_secret_key_instead_of_the_jwt_key_is_refused(api, client_a, settings):
    payload = dict(AccessToken.for_user(client_a).payload)
    forged = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_an_api_key_authenticates_and_me_lists_its_scopes(api, client_a):
    issued = api_key_create(user=client_a, name="ci", scopes=["media:read"])
    assert issued.plaintext.startswith("hk_")
    stored = ApiKey.objects.get()
    assert issued.plaintext.split(".", 1)[1] not in (stored.secret_hash, stored.prefix)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    me = api.get("/api/v1/auth/me/").json()
    assert me["auth"] == "api_key"
    assert me["scopes"] == ["media:read"]
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_an_api_key_without_the_scope_gets_403(api, client_a):
    issued = api_key_create(user=client_a, name="ci", scopes=["review:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_revoked_api_key_is_refused(api, client_a):
    issued = api_key_create(user=client_a, name="ci", scopes=["media:read"])
    api_key_revoke(api_key=issued.api_key)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_an_expired_api_key_is_refused(api, client_a):
    issued = api_key_create(
        user=client_a, name="ci", scopes=["media:read"], expires_at=timezone.now() + timedelta(seconds=1)
    )
    ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Api-Key hk_nope.garbage", "invalid_api_key"),
        ("Api-Key ", "invalid_api_key"),
        ("Bearer not-a-jwt", "token_not_valid"),
        ("Bearer a.b.c", "token_not_valid"),
        ("Api-Key hk_abcd1234." + "x" * 40, "invalid_api_key"),
    ],
)
def test_garbage_credentials_get_401_in_the_error_shape(api, db, header, code):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "details"}
    assert response.json()["code"] == code


def test_refresh_with_a_garbage_token_is_401(api, db):
    response = api.post("/api/v1/auth/token/refresh/", {"refresh": "garbage"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_refresh_token_is_not_an_access_token(api, client_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(client_a)}")
    assert api.get("/api/v1/auth/me/").status_code == 401
