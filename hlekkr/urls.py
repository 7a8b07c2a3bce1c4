"""The roof: every app's routes. Nothing imports this module."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from media.api import urls as media_api_urls

api_v1 = [
    path("", include("hlekkr.accounts.urls")),
    path("", include("media.api.urls")),
    path("", include("analysis.api.urls")),
    path("", include("review.api.urls")),
    path("", include("batches.api.urls")),
    path("", include("hlekkr.webhooks.api.urls")),
    path("", include("hlekkr.evidence.urls")),
]

urlpatterns = [
    *media_api_urls.root_urlpatterns,  # first: the media list and detail (media/api/urls.py)
    path("", include("hlekkr.ops.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("review.urls")),
]

handler400 = "hlekkr.api.handler400"
handler403 = "hlekkr.api.handler403"
handler404 = "hlekkr.api.handler404"
handler500 = "hlekkr.api.handler500"
