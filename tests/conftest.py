"""The cast every test can use, and the shared fixtures (S3 through moto's server, PostgreSQL marker)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fetch_server import fetch_server  # noqa: F401 - the loopback media server fixture (tests/fetch_server.py)
from rest_framework.test import APIClient

from hlekkr.accounts.models import Role, User

PASSWORD = "correct-horse-battery-1"


def _user(username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, role=role)
    if role == Role.ADMIN:
        user.is_staff = user.is_superuser = True
        user.save()
    return user


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    """Empty the cache (rate-limit counters live there) before every test, so no test is throttled by another's
    requests; with database access, load the rate-limit policies before the test body (pinned query counts)."""
    from ratelimit.testing import reset

    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    if marker or transactional or "db" in request.fixturenames:
        request.getfixturevalue("transactional_db" if transactional else "db")
        reset(load_policies=True)
    else:
        reset(load_policies=False)


@pytest.fixture(autouse=True)
def _fresh_auth_cache() -> None:
    """Each process remembers users and API keys for a few seconds (hlekkr/accounts/auth_cache.py); a test must
    not see another test's users (SQLite reuses primary keys after a rollback)."""
    from hlekkr.accounts import auth_cache

    auth_cache.clear()


def domain_callbacks(callbacks: list[Any]) -> list[Any]:
    """On-commit callbacks other than the audit sequencer's drain (every audited transaction registers one)."""
    from hlekkr.audit.services import audit_seal_after_commit

    return [callback for callback in callbacks if callback is not audit_seal_after_commit]


@pytest.fixture
def client_a(db: Any) -> User:
    return _user("client_a", Role.CLIENT)


@pytest.fixture
def client_b(db: Any) -> User:
    return _user("client_b", Role.CLIENT)


@pytest.fixture
def outsider(db: Any) -> User:
    return _user("outsider", Role.CLIENT)


@pytest.fixture
def moderator(db: Any) -> User:
    return _user("moderator", Role.MODERATOR)


@pytest.fixture
def lead(db: Any) -> User:
    return _user("lead", Role.LEAD)


@pytest.fixture
def admin_user(db: Any) -> User:
    return _user("admin", Role.ADMIN)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(db: Any):
    """api_as(user) -> an APIClient authenticated with a real JWT access token for `user`."""
    from rest_framework_simplejwt.tokens import RefreshToken

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


# --- PostgreSQL ------------------------------------------------------------------------------------------
@pytest.fixture
def require_postgres(db: Any) -> None:
    """Tests of locking and concurrency need PostgreSQL; CI runs them and must never skip them silently."""
    from django.db import connection

    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI must run PostgreSQL tests: set DATABASE_URL")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.insert(0, "require_postgres")  # type: ignore[attr-defined]


# --- Redis ------------------------------------------------------------------------------------------------
@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("HLEKKR_TEST_REDIS_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run Redis tests: set HLEKKR_TEST_REDIS_URL")
        pytest.skip("needs Redis (set HLEKKR_TEST_REDIS_URL)")
    return url


# --- S3 through moto's server over loopback ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(moto_server: str, settings: Any) -> Iterator[Any]:
    """Point default storage at a fresh bucket on moto's server through django-storages (real HTTP)."""
    import uuid

    import boto3
    from django.core.files.storage import storages

    bucket = f"hlekkr-test-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_ENDPOINT_URL = moto_server
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_server,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "file_overwrite": True,
                "querystring_expire": 300,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        },
    }
    # pytest-django's `settings` fixture sends setting_changed, which makes Django rebuild its storages.
    yield storages["default"]
