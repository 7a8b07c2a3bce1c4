"""One error shape for every API error: {"code", "message", "details"} with the right status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def assert_shape(response, status, code=None):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code
    return body


def test_malformed_json_is_400(api):
    response = api.post("/api/v1/auth/token/", data="{not json", content_type="application/json")
    assert_shape(response, 400, "malformed_request")


def test_unknown_fields_are_400_with_field_details(api):
    response = api.post("/api/v1/auth/token/", {"username": "a", "password": "b", "pasword": "c"}, format="json")
    body = assert_shape(response, 400, "validation_error")
    assert "pasword" in body["details"]["fields"]


def test_missing_fields_are_400_with_field_details(api):
    body = assert_shape(api.post("/api/v1/auth/token/", {}, format="json"), 400, "validation_error")
    assert set(body["details"]["fields"]) == {"username", "password"}


def test_anonymous_is_401(api):
    assert_shape(api.get("/api/v1/auth/me/"), 401, "not_authenticated")


def test_unknown_api_route_is_404_json(api):
    assert_shape(api.get("/api/v1/no-such-route/"), 404, "not_found")


def test_wrong_method_is_405(api):
    assert_shape(api.delete("/api/v1/auth/token/"), 405, "method_not_allowed")


def test_wrong_content_type_is_415(api):
    response = api.post("/api/v1/auth/token/", data="username=a", content_type="text/plain")
    assert_shape(response, 415, "unsupported_media_type")


def test_oversize_json_is_413_before_parsing(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"username": "x" * 5000, "password": "y"})
    assert_shape(api.post("/api/v1/auth/token/", data=body, content_type="application/json"), 413, "payload_too_large")


@pytest.mark.urls("tests.hlekkr.urls_boom")
def test_rate_limited_is_429_with_retry_after(api):
    response = api.get("/api/v1/limited/")
    assert_shape(response, 429, "rate_limited")
    assert response["Retry-After"] == "17"


@pytest.mark.urls("tests.hlekkr.urls_boom")
def test_an_unhandled_error_in_an_api_view_is_500_without_internals(api):
    response = api.get("/api/v1/boom/")
    body = assert_shape(response, 500, "server_error")
    assert "hunter2" not in response.content.decode() and "Traceback" not in json.dumps(body)


@pytest.mark.urls("tests.hlekkr.urls_boom")
def test_an_unhandled_error_in_a_plain_view_under_api_is_500_json():
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/plain-boom/")
    assert_shape(response, 500, "server_error")
    assert b"secret internals" not in response.content


def test_non_api_404_stays_html(client):
    response = client.get("/definitely-not-here/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_health_answers_without_auth(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["X-Request-ID"]


# --- the database away ---------------------------------------------------------------------------------------
def _database_refuses():
    from unittest import mock

    from django.db import OperationalError, connection

    return mock.patch.object(
        connection, "cursor", side_effect=OperationalError('connection to server at "127.0.0.1" failed: refused')
    )


def test_an_api_request_while_the_database_refuses_is_a_503_in_the_error_shape(api_as, client_a, caplog):
    api = api_as(client_a)
    with _database_refuses():
        response = api.get("/api/v1/media/")
    body = assert_shape(response, 503, "service_unavailable")
    assert "database" in body["message"]
    assert response["Retry-After"] == "5"
    assert [r.exc_info for r in caplog.records if "database unavailable" in r.getMessage()] == [None]


def test_a_dashboard_page_while_the_database_refuses_is_a_503_not_a_500(client_a):
    client = Client(raise_request_exception=False)
    client.force_login(client_a)
    with _database_refuses():
        response = client.get("/dashboard/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_content_negotiation_still_refuses_what_it_cannot_render(api_as: Any, client_a: Any) -> None:
    api = api_as(client_a)
    for accept in ("", "*/*", "application/json"):
        response = api.get("/api/v1/media/", HTTP_ACCEPT=accept) if accept else api.get("/api/v1/media/")
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
    refused = api.get("/api/v1/media/", HTTP_ACCEPT="text/html")
    assert refused.status_code == 406 and refused.json()["code"] == "not_acceptable"
    assert api.get("/api/v1/media/?format=xml").status_code == 404  # DRF's answer to an unknown format
    assert api.get("/api/v1/media/", HTTP_ACCEPT="application/json; indent=2").content.startswith(b'{\n  "')
