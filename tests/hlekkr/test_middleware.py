"""hlekkr/middleware.py: messages still work on the pages that use them, and cost nothing on those that don't."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import messages
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from hlekkr import middleware


def _chain(view: Any) -> Any:
    return SessionMiddleware(middleware.LazyMessageMiddleware(view))


def test_a_message_added_on_one_request_is_shown_on_the_next(db: Any) -> None:
    def add(request: HttpRequest) -> HttpResponse:
        messages.success(request, "Decided: manipulated.")
        return HttpResponse("ok")

    def show(request: HttpRequest) -> HttpResponse:
        return HttpResponse(" | ".join(str(m) for m in messages.get_messages(request)))

    factory = RequestFactory()
    first = _chain(add)(factory.post("/dashboard/items/1/decide/"))
    second_request = factory.get("/dashboard/")
    second_request.COOKIES = {name: morsel.value for name, morsel in first.cookies.items()}
    assert _chain(show)(second_request).content == b"Decided: manipulated."


def test_a_request_that_uses_no_message_builds_no_storage(
    api_as: Any, client_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = middleware.default_storage

    def counting(request: HttpRequest) -> Any:
        built.append(request.path)
        return original(request)

    monkeypatch.setattr(middleware, "default_storage", counting)
    assert api_as(client_a).get("/api/v1/media/").status_code == 200
    assert "Set-Cookie" not in api_as(client_a).get("/api/v1/auth/me/")
    assert built == []


# --- token API requests skip the session, Django's auth middleware and the message storage ------------------
def _seen(request: HttpRequest) -> HttpResponse:
    session = "session" if hasattr(request, "session") else "no session"
    user = "anonymous" if request.user.is_anonymous else "signed in"  # Django's is a lazy object
    return HttpResponse(f"{session} {user} {hasattr(request, '_messages')}")


def _full_chain() -> Any:
    return middleware.SessionMiddleware(middleware.AuthenticationMiddleware(middleware.LazyMessageMiddleware(_seen)))


@pytest.mark.parametrize("scheme", ["Bearer", "Api-Key"])
def test_a_cookie_less_token_api_request_gets_no_session_and_an_anonymous_django_user(scheme: str) -> None:
    request = RequestFactory().get("/api/v1/media/", HTTP_AUTHORIZATION=f"{scheme} abc")
    assert _full_chain()(request).content == b"no session anonymous False"


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/api/v1/media/", {"HTTP_AUTHORIZATION": "Bearer abc", "HTTP_COOKIE": "sessionid=x"}),  # a cookie too
        ("/api/v1/media/", {"HTTP_AUTHORIZATION": "Basic dTpw"}),  # a browser may attach Basic credentials
        ("/api/v1/media/", {}),
        ("/dashboard/", {"HTTP_AUTHORIZATION": "Bearer abc"}),  # not the API
    ],
)
def test_every_other_request_gets_djangos_session_and_auth(db: Any, path: str, headers: dict[str, str]) -> None:
    request = RequestFactory().get(path)
    request.META.update(headers)
    assert _full_chain()(request).content == b"session anonymous True"


def test_a_session_cookie_next_to_a_token_still_needs_a_csrf_token(client_a: Any) -> None:
    """CSRF is Django's own middleware, untouched: a cookie-authenticated unsafe request without the token is
    refused even when it also carries an Authorization header."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(client_a)
    response = client.post("/dashboard/logout/", HTTP_AUTHORIZATION="Bearer abc")
    assert response.status_code == 403
    assert "_auth_user_id" in client.session  # still signed in


def test_a_token_api_response_sets_no_cookie_and_no_vary_cookie(api_as: Any, client_a: Any) -> None:
    response = api_as(client_a).get("/api/v1/media/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")
