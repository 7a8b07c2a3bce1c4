from django.urls import path

from analysis.api import views

urlpatterns = [
    path("media/<uuid:media_id>/analyses/", views.MediaAnalysisCreateListView.as_view(), name="media-analyses"),
    path("analyses/<uuid:analysis_id>/", views.AnalysisDetailView.as_view(), name="analysis-detail"),
]
