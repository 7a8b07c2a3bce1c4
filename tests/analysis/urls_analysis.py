"""The media and analysis API alone, so these tests do not depend on other apps' routes being importable."""

from django.urls import include, path

from media.api import urls as media_api_urls

urlpatterns = [
    *media_api_urls.root_urlpatterns,
    path("api/v1/", include("media.api.urls")),
    path("api/v1/", include("analysis.api.urls")),
]
