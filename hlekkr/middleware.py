"""Django middleware that does per request only the work a request uses."""

from __future__ import annotations

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, but the message storage (a cookie signer and a cookie and a session backend)
    is built when a view first adds or reads a message, not on every request: the API, the probes and most
    dashboard reads never do, and building it was the largest cost of the whole middleware stack on a cached
    API read. A request that never touched it has nothing to store, so the response is left alone."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
