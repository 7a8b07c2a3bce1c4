"""A strict Content-Security-Policy on every response (hlekkr/csp.py); the browser tests prove the dashboard
works under it (tests/review/test_browser.py)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from hlekkr.csp import build_policy, storage_origins

pytestmark = pytest.mark.django_db


def directives(header: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in header.split("; ")}


@pytest.mark.parametrize("path", ["/dashboard/login/", "/api/v1/auth/me/", "/health", "/admin/login/"])
def test_every_response_carries_the_strict_policy(path: str) -> None:
    policy = directives(Client().get(path)["Content-Security-Policy"])
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in " ".join(policy.values())


def test_swagger_ui_may_load_its_bundle_from_the_cdn_but_nothing_inline() -> None:
    policy = directives(Client().get("/api/docs/")["Content-Security-Policy"])
    assert policy["script-src"] == "'self' https://cdn.jsdelivr.net"
    assert "unsafe" not in " ".join(policy.values())


def test_media_on_s3_is_allowed_from_the_bucket_only() -> None:
    with override_settings(
        AWS_STORAGE_BUCKET_NAME="media-bucket", AWS_S3_ENDPOINT_URL=None, AWS_S3_REGION_NAME="eu-west-1"
    ):
        origins = storage_origins()
    assert origins == ["https://media-bucket.s3.amazonaws.com", "https://media-bucket.s3.eu-west-1.amazonaws.com"]
    with override_settings(AWS_STORAGE_BUCKET_NAME="b", AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000/"):
        assert storage_origins() == ["http://127.0.0.1:9000"]
    policy = directives(build_policy(extra_media=origins))
    assert policy["img-src"].endswith("https://media-bucket.s3.eu-west-1.amazonaws.com")
    assert policy["script-src"] == "'self'"
