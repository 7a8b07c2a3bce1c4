"""Django middleware that does per request only the work a request uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

# Credentials a client sets itself on every request. A browser never attaches these on its own (it may attach
# cached Basic credentials or cookies to a cross-site request, which is why neither counts here).
_TOKEN_SCHEMES = ("Bearer ", "Api-Key ")


def is_token_api_request(request: HttpRequest) -> bool:
    """An API request authenticated by a token and carrying no cookie at all: no session can apply to it (the
    API authenticates only by API key or JWT) and it has no ambient credential a forged cross-site request
    could ride on. The session, Django's auth middleware and the message storage have nothing to do for it."""
    meta = request.META
    return (
        not meta.get("HTTP_COOKIE")  # absent or empty
        and meta.get("HTTP_AUTHORIZATION", "").startswith(_TOKEN_SCHEMES)
        and request.path_info.startswith("/api/")
    )


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's SessionMiddleware, skipped for a token API request (is_token_api_request): building the
    session store and checking it on the way out was ~11 µs of a cached API read that never looks at it."""

    def __call__(self, request: HttpRequest) -> Any:
        if is_token_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


async def _anonymous(request: HttpRequest | None = None) -> AnonymousUser:
    return AnonymousUser()


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's AuthenticationMiddleware; a token API request has no session, so its Django user is the one a
    cookie-less request gets, AnonymousUser, until DRF's authentication sets the token's user."""

    def __call__(self, request: HttpRequest) -> Any:
        if is_token_api_request(request):
            request.user = AnonymousUser()
            request.auser = _anonymous
            return self.get_response(request)
        return super().__call__(request)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, but the message storage (a cookie signer and a cookie and a session backend)
    is built when a view first adds or reads a message, not on every request: the API, the probes and most
    dashboard reads never do, and building it was the largest cost of the whole middleware stack on a cached
    API read. A request that never touched it has nothing to store, so the response is left alone. A token API
    request (is_token_api_request) has no session to keep messages in and gets no storage at all."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if is_token_api_request(request):
            return self.get_response(request)
        return super().__call__(request)

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
