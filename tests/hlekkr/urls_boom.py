"""Test-only routes that fail on purpose, to check the error envelope for 429 and 500."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hlekkr.exceptions import RateLimited


class Boom(APIView):
    permission_classes: list = []
    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("database password is hunter2")


class Limited(APIView):
    permission_classes: list = []
    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        raise RateLimited(retry_after=17)


def plain_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals")


urlpatterns = [
    path("api/v1/boom/", Boom.as_view()),
    path("api/v1/limited/", Limited.as_view()),
    path("api/v1/plain-boom/", plain_boom),
    path("", include("hlekkr.urls")),
]

handler404 = "hlekkr.api.handler404"
handler500 = "hlekkr.api.handler500"
