from django.urls import path

from hlekkr.ops import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("metrics", views.metrics, name="metrics"),
    # Lives with ops (the roof), shown inside the dashboard.
    path("dashboard/status/", views.status_page, name="ops-status"),
]
