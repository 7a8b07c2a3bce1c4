from django.urls import path

from hlekkr.webhooks.api import views

urlpatterns = [
    path("webhooks/", views.EndpointListCreateView.as_view(), name="webhook-list"),
    path("webhooks/<uuid:endpoint_id>/", views.EndpointDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<uuid:endpoint_id>/enable/", views.EndpointEnableView.as_view(), name="webhook-enable"),
    path("webhooks/<uuid:endpoint_id>/deliveries/", views.DeliveryListView.as_view(), name="webhook-deliveries"),
]
