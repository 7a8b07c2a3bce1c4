from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.test import Client

from hlekkr.accounts.models import User
from hlekkr.audit.models import AuditEvent
from ratelimit.models import RateLimitPolicy
from ratelimit.policies import VERSION_KEY, policy_cache
from ratelimit.services import ratelimit_policy_delete, ratelimit_policy_save

READ = "/api/v1/probe/read/"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_edit_reaches_a_running_process_after_the_ttl_without_a_restart(
    settings: Any, set_policy: Callable, api_as: Any, client_a: User, django_capture_on_commit_callbacks: Any
) -> None:
    (policy,) = set_policy("read", "2/m")
    clock = FakeClock()
    policy_cache.clock = clock
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 2
    client = api_as(client_a)
    assert client.get(READ)["X-RateLimit-Limit"] == "2"  # loaded now, cached for 2 s

    version = cache.get(VERSION_KEY)
    policy.rate = "50/m"
    with django_capture_on_commit_callbacks(execute=True):
        ratelimit_policy_save(actor=None, policy=policy)  # what the admin does: save, audit, bump the version
    assert cache.get(VERSION_KEY) != version

    clock.now += 1  # within the TTL the process still uses what it loaded
    assert client.get(READ)["X-RateLimit-Limit"] == "2"
    clock.now += 1.5  # past the TTL: it sees the new version and reloads
    assert client.get(READ)["X-RateLimit-Limit"] == "50"


def test_without_a_version_change_the_process_does_not_query_the_database(
    settings: Any, set_policy: Callable, api_as: Any, client_a: User, django_assert_num_queries: Any
) -> None:
    set_policy("read", "5/m")
    client = api_as(client_a)
    client.get(READ)  # loads
    with django_assert_num_queries(0):  # nothing for rate limits (and the JWT user is in the auth cache)
        client.get(READ)


def test_policy_edits_and_deletes_are_audited(db: Any, admin_user: User) -> None:
    policy = ratelimit_policy_save(actor=admin_user, policy=RateLimitPolicy(group="read", key_type="ip", rate="9/m"))
    policy.rate = "10/m"
    ratelimit_policy_save(actor=admin_user, policy=policy)
    ratelimit_policy_delete(actor=admin_user, policy=policy)
    events = list(AuditEvent.objects.filter(action__startswith="ratelimit.policy.").order_by("id"))
    assert [e.action for e in events] == [
        "ratelimit.policy.created",
        "ratelimit.policy.updated",
        "ratelimit.policy.deleted",
    ]
    assert events[1].payload["before"]["rate"] == "9/m" and events[1].payload["after"]["rate"] == "10/m"
    assert all(e.actor_id == admin_user.pk for e in events)


def test_a_group_without_rows_falls_back_to_the_built_in_defaults(
    set_policy: Callable, api_as: Any, client_a: User
) -> None:
    RateLimitPolicy.objects.filter(group="read").delete()
    policy_cache.invalidate()
    assert api_as(client_a).get(READ)["X-RateLimit-Limit"] == "60"


def test_the_admin_rejects_a_bad_rate_and_saves_a_good_one_through_the_service(db: Any, admin_user: User) -> None:
    browser = Client()
    browser.force_login(admin_user)
    url = "/admin/ratelimit/ratelimitpolicy/add/"
    form = {"group": "read", "key_type": "user", "rate": "60/x", "role_multipliers": '{"client": 1}', "enabled": "on"}
    bad = browser.post(url, form)
    assert bad.status_code == 200 and "not a rate like" in bad.content.decode()
    assert not RateLimitPolicy.objects.filter(rate="60/x").exists()

    bad_roles = browser.post(url, {**form, "rate": "61/m", "role_multipliers": '{"root": 9}'})
    assert bad_roles.status_code == 200 and "Unknown role" in bad_roles.content.decode()

    good = browser.post(url, {**form, "rate": "61/m"})
    assert good.status_code == 302
    assert RateLimitPolicy.objects.filter(group="read", rate="61/m").exists()
    assert AuditEvent.objects.filter(action="ratelimit.policy.created", actor_id=admin_user.pk).exists()


def test_the_admin_monitor_page_renders(db: Any, admin_user: User) -> None:
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get("/admin/ratelimit/ratelimithit/?above=5&hours=2")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Top offenders" in text and "Keys above 5 requests per minute" in text
