"""Routes for the rate-limit tests: the real auth endpoints plus small views in each group."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class _Probe(APIView):
    required_scopes = {"*": "media:read"}

    def get(self, request: Request) -> Response:
        return Response({"ok": True})

    def post(self, request: Request) -> Response:
        return Response({"ok": True}, status=201)


class ReadProbe(_Probe):
    ratelimit_group = "read"


class UploadProbe(_Probe):
    ratelimit_group = "upload"


class ReviewProbe(_Probe):
    ratelimit_group = "review"


class UngroupedProbe(_Probe):
    pass


def dashboard_action(request: HttpRequest) -> HttpResponse:
    return HttpResponse("done")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("hlekkr.accounts.urls")),
    path("api/v1/probe/read/", ReadProbe.as_view()),
    path("api/v1/probe/upload/", UploadProbe.as_view()),
    path("api/v1/probe/review/", ReviewProbe.as_view()),
    path("api/v1/probe/ungrouped/", UngroupedProbe.as_view()),
    path("dashboard/login/", LoginView.as_view(template_name="admin/login.html")),
    path("dashboard/items/1/decide/", dashboard_action),
]
