from django.urls import path

from review.api import views

urlpatterns = [
    path("review/queue/", views.QueueView.as_view(), name="review-queue"),
    path("review/next/", views.NextView.as_view(), name="review-next"),
    path("review/items/<uuid:item_id>/", views.ItemView.as_view(), name="review-item"),
    path("review/items/<uuid:item_id>/claim/", views.ClaimView.as_view(), name="review-claim"),
    path("review/items/<uuid:item_id>/release/", views.ReleaseView.as_view(), name="review-release"),
    path("review/items/<uuid:item_id>/decide/", views.DecideView.as_view(), name="review-decide"),
    path("review/items/<uuid:item_id>/escalate/", views.EscalateView.as_view(), name="review-escalate"),
    path("review/items/<uuid:item_id>/gold/", views.GoldView.as_view(), name="review-gold"),
    path("review/items/<uuid:item_id>/assign/", views.AssignView.as_view(), name="review-assign"),
]
