from django.urls import path

from batches.api import views

urlpatterns = [
    path("batches/", views.BatchCollectionView.as_view(), name="batch-collection"),
    path("batches/<uuid:batch_id>/", views.BatchView.as_view(), name="batch"),
]
