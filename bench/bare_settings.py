"""The baseline of bench/load.py: Hlekkr's own settings, but no middleware and one plain Django JSON view.

Served by the same gunicorn command line as the app (`DJANGO_SETTINGS_MODULE=bare_settings`, with bench/ on the
Python path), so the only difference between the two servers is Hlekkr's request path.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from hlekkr.settings import *  # noqa: F403

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bare_settings"


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": "00000000-0000-0000-0000-000000000000", "status": "stored", "trust_score": 83})


urlpatterns = [path("bare/", bare)]
