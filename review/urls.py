from django.contrib.auth import views as auth_views
from django.urls import path

from review import views
from review.forms import ModeratorLoginForm

app_name = "dashboard"
urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html",
            authentication_form=ModeratorLoginForm,
            redirect_authenticated_user=False,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("", views.queue, name="queue"),
    path("queue/rows/", views.queue_rows, name="queue-rows"),
    path("queue/depth/", views.queue_depth_fragment, name="depth"),
    path("next/", views.take_next, name="next"),
    path("mine/", views.my_work, name="mine"),
    path("stats/", views.stats, name="stats"),
    path("lead/", views.lead, name="lead"),
    path("lead/run-assignment/", views.run_assignment, name="run-assignment"),
    path("items/<uuid:item_id>/", views.item_page, name="item"),
    path("items/<uuid:item_id>/claim/", views.item_claim, name="claim"),
    path("items/<uuid:item_id>/release/", views.item_release, name="release"),
    path("items/<uuid:item_id>/decide/", views.item_decide, name="decide"),
    path("items/<uuid:item_id>/escalate/", views.item_escalate, name="escalate"),
    path("items/<uuid:item_id>/assign/", views.item_assign, name="assign"),
    path("items/<uuid:item_id>/gold/", views.item_gold, name="gold"),
    path("items/<uuid:item_id>/heartbeat/", views.item_heartbeat, name="heartbeat"),
]
