from django.urls import path

from hlekkr.evidence import views

urlpatterns = [
    path("media/<uuid:media_id>/evidence/", views.EvidenceView.as_view(), name="media-evidence"),
]
