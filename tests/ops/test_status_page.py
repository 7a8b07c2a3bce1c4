"""/dashboard/status/: leads and admins see health, alerts and 24 h charts; nobody else does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hlekkr.ops.models import Alert, AlertRule, QueueDepthSample, RequestMinute

pytestmark = pytest.mark.django_db
URL = "/dashboard/status/"


def test_anonymous_visitors_are_sent_to_log_in(client: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/")


@pytest.mark.parametrize("who", ["client_a", "moderator"])
def test_clients_and_moderators_are_refused(client: Any, who: str, request: Any) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("who", ["lead", "admin_user"])
def test_leads_and_admins_see_components_alerts_and_charts(client: Any, who: str, request: Any) -> None:
    now = timezone.now()
    for hours in range(0, 24, 3):
        QueueDepthSample.objects.create(sampled_at=now - timedelta(hours=hours), total=10 + hours)
    RequestMinute.objects.create(minute=now.replace(second=0, microsecond=0), route="r", method="GET", count=50,
                                 count_2xx=49, count_5xx=1, latency_buckets=[50])  # fmt: skip
    Alert.objects.create(
        rule=AlertRule.objects.get(kind="review_queue_depth"), opened_at=now, message="queue averaged 150"
    )
    client.force_login(request.getfixturevalue(who))
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for component in ("database", "cache", "broker", "storage", "workers", "bedrock"):
        assert f">{component}" in html
    assert "queue averaged 150" in html
    assert html.count("<svg") == 4
    assert "<polyline" in html
    assert "Error rate per hour" in html


def test_the_page_has_no_inline_scripts_and_loads_nothing_from_elsewhere(client: Any, lead: Any) -> None:
    import re

    client.force_login(lead)
    html = client.get(URL).content.decode()
    for tag in re.findall(r"<script[^>]*>", html):
        assert re.search(r'src="/static/', tag), tag  # vendored files only, never inline code
    assert re.findall(r"<script[^>]*>\s*[^<\s]", html) == []
    assert "http://" not in html and "https://" not in html


def test_the_page_lives_in_the_dashboard_frame(client: Any, lead: Any) -> None:
    client.force_login(lead)
    html = client.get(URL).content.decode()
    assert 'aria-current="page">System status' in html or "Hlekkr review" in html


def test_the_page_costs_a_bounded_number_of_queries(client: Any, lead: Any, django_assert_max_num_queries: Any) -> None:
    client.force_login(lead)
    with django_assert_max_num_queries(30):
        assert client.get(URL).status_code == 200


def test_charts_scale_to_their_peak() -> None:
    from hlekkr.ops.charts import HEIGHT, PAD, line_chart

    start = timezone.now()
    chart = line_chart("t", [(start, 0.0), (start, 5.0), (start, 10.0)])
    ys = [float(p.split(",")[1]) for p in chart.points.split()]
    assert ys[0] == HEIGHT - PAD and ys[2] == PAD
    assert chart.peak == 10.0 and chart.latest == 10.0
    empty = line_chart("t", [(start, 0.0)] * 3)
    assert all(float(p.split(",")[1]) == HEIGHT - PAD for p in empty.points.split())
