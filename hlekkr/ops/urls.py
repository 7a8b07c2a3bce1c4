from django.urls import path

from hlekkr.ops import views

urlpatterns = [
    path("health", views.health, name="health"),
]
