from django.urls import path

from media.api import views

urlpatterns = [
    path("media/", views.MediaCollectionView.as_view(), name="media-collection"),
    path("media/from-url/", views.MediaFromUrlView.as_view(), name="media-from-url"),
    path("media/uploads/", views.UploadStartView.as_view(), name="media-upload-start"),
    path("media/uploads/<uuid:upload_id>/", views.UploadView.as_view(), name="media-upload"),
    path("media/uploads/<uuid:upload_id>/complete/", views.UploadCompleteView.as_view(), name="media-upload-complete"),
    path(
        "media/uploads/<uuid:upload_id>/parts/<int:part_number>/",
        views.UploadPartView.as_view(),
        name="media-upload-part",
    ),
    path("media/<uuid:media_id>/", views.MediaItemView.as_view(), name="media-item"),
    path("files/<str:token>/", views.download_file, name="media-file"),
]
