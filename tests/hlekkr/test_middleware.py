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
