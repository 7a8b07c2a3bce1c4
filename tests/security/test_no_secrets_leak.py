"""No secret appears in logs, error bodies or admin pages: API keys, JWT access and refresh tokens, webhook
secrets, password hashes (and passwords), and the signing keys (SECRET_KEY, the JWT signing key).

The test plays a client's day — log in, refresh, revoke, use an API key, register a webhook, get things wrong
in every way that makes an error (a wrong key secret, a garbled or reused token, a bad password) — with every
log record of every logger captured, then opens the admin pages that list and edit those objects. The one
place a secret may appear is the response that hands it out (token pair, webhook registration), once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from hlekkr.accounts.models import ApiKey, Role, User
from hlekkr.accounts.services import api_key_create

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-secret-passphrase-14"


class Everything(logging.Handler):
    """Every record, formatted with its arguments and traceback, from every logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + repr(getattr(record, "__dict__", {})))


@pytest.fixture
def logs() -> Iterator[Everything]:
    """The logging configuration as deployed at its most verbose (HLEKKR_LOG_LEVEL=DEBUG: the root at DEBUG,
    the per-logger levels of settings.LOGGING kept), every record caught, from loggers that propagate or not."""
    handler = Everything()
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    level = root.level
    root.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    root.setLevel(level)
    for logger in loggers:
        logger.removeHandler(handler)


def _seen(label: str, text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{name} in {label}" for name, value in secrets.items() if value and value in text]


def test_no_secret_in_logs_error_bodies_or_admin_pages(logs: Everything, settings: Any) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = True
    client_user = User.objects.create_user(username="newsroom", password=PASSWORD, role=Role.CLIENT)
    admin = User.objects.create_superuser(username="root", password=PASSWORD + "-admin", role=Role.ADMIN)
    api = APIClient()
    bodies: list[str] = []

    def keep(response: Any) -> Any:
        bodies.append(response.content.decode("utf-8", "replace"))
        return response

    pair = api.post("/api/v1/auth/token/", {"username": "newsroom", "password": PASSWORD}, format="json").json()
    issued = api_key_create(user=client_user, name="ci", scopes=["media:read", "media:write"]).plaintext
    key_secret = issued.split(".", 1)[1]
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    created = bearer.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["analysis.completed"]}, format="json"
    )
    assert created.status_code == 201, created.content
    webhook_secret = created.json()["secret"]
    refreshed = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").json()

    secrets = {
        "password": PASSWORD,
        "password hash": client_user.password,
        "password hash (admin)": User.objects.get(pk=admin.pk).password,
        "API key": issued,
        "API key secret": key_secret,
        "API key hash": ApiKey.objects.get(user=client_user).secret_hash,
        "access token": pair["access"],
        "refresh token": pair["refresh"],
        "rotated refresh token": refreshed["refresh"],
        "webhook secret": webhook_secret,
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT signing key": settings.SIMPLE_JWT["SIGNING_KEY"],
    }

    # every way to get it wrong, and some ways to get it right
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued}")
    keep(keyed.get("/api/v1/auth/me/"))
    keep(keyed.get(f"/api/v1/webhooks/{created.json()['id']}/"))
    keep(keyed.get("/api/v1/webhooks/"))
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued[:-3]}xyz")
    keep(wrong.get("/api/v1/auth/me/"))
    garbled = APIClient()
    garbled.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access'][:-4]}AAAA")
    keep(garbled.get("/api/v1/auth/me/"))
    refresh_as_access = APIClient()
    refresh_as_access.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")
    keep(refresh_as_access.get("/api/v1/auth/me/"))
    keep(api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"))  # reuse: theft
    keep(api.post("/api/v1/auth/token/", {"username": "newsroom", "password": PASSWORD[:-1]}, format="json"))
    keep(api.post("/api/v1/auth/token/", {"username": "newsroom", "password": PASSWORD, "x": 1}, format="json"))
    keep(bearer.post("/api/v1/auth/token/revoke/", {"refresh": pair["refresh"] + "x"}, format="json"))
    keep(keyed.post("/api/v1/webhooks/", {"url": webhook_secret, "events": ["nope"]}, format="json"))
    keep(Client().post("/dashboard/login/", {"username": "newsroom", "password": PASSWORD[:-2]}))

    leaks = []
    for body in bodies:
        leaks += _seen("an API response", body, secrets)

    # admin pages that list or edit the objects holding secrets
    staff = Client()
    staff.force_login(admin)
    pages = [
        "/admin/accounts/user/",
        f"/admin/accounts/user/{client_user.pk}/change/",
        "/admin/accounts/apikey/",
        f"/admin/accounts/apikey/{ApiKey.objects.get(user=client_user).pk}/change/",
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{created.json()['id']}/change/",
        "/admin/token_blacklist/outstandingtoken/",
        "/admin/token_blacklist/blacklistedtoken/",
        "/admin/audit/auditevent/",
    ]
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    pages += [f"/admin/token_blacklist/outstandingtoken/{t.pk}/change/" for t in OutstandingToken.objects.all()]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, (page, response.status_code)
        leaks += _seen(f"admin page {page}", response.content.decode(), secrets)
    from hlekkr.audit.models import AuditEvent

    leaks += _seen("the audit log", repr(list(AuditEvent.objects.values())), secrets)
    leaks += _seen("the logs", "\n".join(logs.lines), secrets)
    assert not leaks, sorted(set(leaks))
    assert logs.lines, "the capture saw no log records at all: the test would prove nothing"


def test_the_signing_keys_differ_from_each_other() -> None:
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
