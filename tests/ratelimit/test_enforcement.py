from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from hlekkr.accounts.models import User
from hlekkr.accounts.services import api_key_create
from tests.conftest import PASSWORD

READ = "/api/v1/probe/read/"
UPLOAD = "/api/v1/probe/upload/"
LOGIN = "/api/v1/auth/token/"


def _statuses(client: APIClient, n: int, path: str = READ, method: str = "get") -> list[int]:
    return [getattr(client, method)(path).status_code for _ in range(n)]


def test_a_user_gets_the_limit_then_429_in_the_error_shape(set_policy: Callable, api_as: Any, client_a: User) -> None:
    set_policy("read", "3/m")
    client = api_as(client_a)
    assert _statuses(client, 3) == [200, 200, 200]
    refused = client.get(READ)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited" and body["message"] and body["details"]["group"] == "read"
    assert refused["Retry-After"].isdigit() and 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Limit"] == "3" and refused["X-RateLimit-Remaining"] == "0"
    assert int(refused["X-RateLimit-Reset"]) == int(refused["Retry-After"])


def test_successful_responses_carry_the_remaining_budget(set_policy: Callable, api_as: Any, client_a: User) -> None:
    set_policy("read", "5/m")
    client = api_as(client_a)
    seen = [client.get(READ) for _ in range(3)]
    assert [r["X-RateLimit-Limit"] for r in seen] == ["5", "5", "5"]
    assert [r["X-RateLimit-Remaining"] for r in seen] == ["4", "3", "2"]
    assert all(1 <= int(r["X-RateLimit-Reset"]) <= 60 for r in seen)


def test_each_user_has_their_own_budget(set_policy: Callable, api_as: Any, client_a: User, client_b: User) -> None:
    set_policy("read", "2/m")
    a, b = api_as(client_a), api_as(client_b)
    assert _statuses(a, 3) == [200, 200, 429]
    assert _statuses(b, 2) == [200, 200]


def test_groups_are_counted_separately(set_policy: Callable, api_as: Any, client_a: User) -> None:
    set_policy("read", "2/m")
    set_policy("upload", "2/m")
    client = api_as(client_a)
    assert _statuses(client, 3) == [200, 200, 429]
    assert _statuses(client, 2, UPLOAD, "post") == [201, 201]
    assert client.post(UPLOAD).status_code == 429


def test_a_view_without_a_group_counts_reads_as_read_and_writes_as_upload(
    set_policy: Callable, api_as: Any, client_a: User
) -> None:
    set_policy("read", "2/m")
    set_policy("upload", "1/m")
    client = api_as(client_a)
    assert _statuses(client, 3, "/api/v1/probe/ungrouped/") == [200, 200, 429]
    assert client.get(READ).status_code == 429  # the same `read` budget
    assert _statuses(client, 2, "/api/v1/probe/ungrouped/", "post") == [201, 429]


def test_role_multipliers_raise_the_limit(set_policy: Callable, api_as: Any, client_a: User, moderator: User) -> None:
    set_policy("read", "2/m", multipliers={"client": 1, "moderator": 2})
    assert _statuses(api_as(client_a), 3) == [200, 200, 429]
    moderated = api_as(moderator)
    assert _statuses(moderated, 5) == [200, 200, 200, 200, 429]
    assert moderated.get(READ)["X-RateLimit-Limit"] == "4"


def test_every_window_of_a_group_applies(set_policy: Callable, api_as: Any, client_a: User) -> None:
    set_policy("upload", "3/m", "4/h")
    client = api_as(client_a)
    first = client.post(UPLOAD)
    assert first["X-RateLimit-Limit"] == "3"  # the minute window is the tighter one at first
    assert _statuses(client, 3, UPLOAD, "post") == [201, 201, 429]


def test_a_refused_request_does_not_use_up_the_other_windows(set_policy: Callable, api_as: Any, client_a: User) -> None:
    set_policy("upload", "2/m", "10/h")
    client = api_as(client_a)
    assert _statuses(client, 6, UPLOAD, "post") == [201, 201, 429, 429, 429, 429]
    set_policy("upload", "10/h")  # drop the minute window: the hourly one saw only the 2 admitted requests
    assert client.post(UPLOAD)["X-RateLimit-Remaining"] == "7"


def test_a_disabled_policy_does_not_limit(set_policy: Callable, api_as: Any, client_a: User) -> None:
    (policy,) = set_policy("read", "1/m")
    policy.enabled = False
    policy.save()
    client = api_as(client_a)
    assert _statuses(client, 3) == [200, 200, 200]
    assert "X-RateLimit-Limit" not in client.get(READ)


def test_api_key_policies_count_each_key_separately(set_policy: Callable, client_a: User) -> None:
    set_policy("read", "2/m", key_type="api_key")
    one = api_key_create(user=client_a, name="one", scopes=["media:read"], expires_at=None).plaintext
    two = api_key_create(user=client_a, name="two", scopes=["media:read"], expires_at=None).plaintext
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Api-Key {one}")
    second.credentials(HTTP_AUTHORIZATION=f"Api-Key {two}")
    assert _statuses(first, 3) == [200, 200, 429]
    assert _statuses(second, 2) == [200, 200]


def test_user_policies_share_one_budget_across_a_users_api_keys(set_policy: Callable, client_a: User) -> None:
    set_policy("read", "2/m", key_type="user")
    clients = []
    for name in ("one", "two"):
        raw = api_key_create(user=client_a, name=name, scopes=["media:read"], expires_at=None).plaintext
        clients.append(APIClient())
        clients[-1].credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert [c.get(READ).status_code for c in (*clients, *clients)] == [200, 200, 429, 429]


def test_anonymous_callers_are_keyed_by_ip(set_policy: Callable, db: Any) -> None:
    set_policy("auth", "2/5m", key_type="ip")
    client = APIClient()
    bad = {"username": "nobody", "password": "wrong-password-1"}
    assert [client.post(LOGIN, bad, format="json", REMOTE_ADDR="198.51.100.1").status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]
    assert client.post(LOGIN, bad, format="json", REMOTE_ADDR="198.51.100.2").status_code == 401


def test_rotating_ipv6_addresses_inside_one_64_does_not_escape_the_auth_limit(set_policy: Callable, db: Any) -> None:
    set_policy("auth", "2/5m", key_type="ip")
    client = APIClient()
    bad = {"username": "nobody", "password": "wrong-password-1"}
    rotating = ["2001:db8:1:2::1", "2001:db8:1:2:aaaa::7", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
    codes = [client.post(LOGIN, bad, format="json", REMOTE_ADDR=address).status_code for address in rotating]
    assert codes == [401, 401, 429]
    # The neighbouring /64 is another subscriber.
    assert client.post(LOGIN, bad, format="json", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


def test_a_login_flood_with_spoofed_forwarded_headers_is_refused(db: Any, client_a: User) -> None:
    """The default policy: 5 failed logins per 5 minutes per address, whatever X-Forwarded-For says."""
    client = APIClient()
    codes = []
    for i in range(12):
        spoof = f"203.0.113.{random.randint(1, 254)}, 10.{i}.0.1"
        body = {"username": "client_a", "password": f"wrong-{i}-password"}
        codes.append(client.post(LOGIN, body, format="json", HTTP_X_FORWARDED_FOR=spoof).status_code)
    assert codes == [401] * 5 + [429] * 7
    refused = client.post(LOGIN, {"username": "client_a", "password": PASSWORD}, format="json")
    assert refused.status_code == 429
    assert refused["Retry-After"].isdigit() and refused["X-RateLimit-Limit"] == "5"
    assert set(refused.json()) == {"code", "message", "details"}


def test_successful_logins_give_their_slot_back(db: Any, client_a: User) -> None:
    client = APIClient()
    good = {"username": "client_a", "password": PASSWORD}
    assert [client.post(LOGIN, good, format="json").status_code for _ in range(8)] == [200] * 8
    bad = {"username": "client_a", "password": "wrong-password-x"}
    assert [client.post(LOGIN, bad, format="json").status_code for _ in range(6)] == [401] * 5 + [429]


def test_the_dashboard_login_form_is_limited_by_ip(db: Any, client_a: User) -> None:
    from django.test import Client

    browser = Client()
    codes = [
        browser.post("/dashboard/login/", {"username": "client_a", "password": "nope-nope-nope"}).status_code
        for _ in range(6)
    ]
    assert codes == [200] * 5 + [429]  # the form re-renders (200) on a failure; those count


def test_dashboard_writes_count_as_review_actions(set_policy: Callable, client_a: User) -> None:
    from django.test import Client

    set_policy("review", "2/m")
    browser = Client()
    browser.force_login(client_a)
    codes = [browser.post("/dashboard/items/1/decide/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert browser.get("/dashboard/items/1/decide/").status_code == 200  # reads are not limited


def test_keys_read_with_the_count_come_back_on_the_decision(set_policy: Callable, client_a: User) -> None:
    from django.core.cache import cache
    from django.test import RequestFactory

    from ratelimit import limiter
    from ratelimit.models import RateLimitPolicy
    from ratelimit.policies import policy_cache

    set_policy("read", "5/m")
    cache.set("hook-present", {"x": 1}, 30)
    request = RequestFactory().get(READ)
    decision = limiter.check(request, group="read", user=client_a, also_get=["hook-present", "hook-absent"])
    assert decision.fetched == {"hook-present": {"x": 1}} and decision.usage and decision.usage.remaining == 4
    RateLimitPolicy.objects.filter(group="read").update(enabled=False)
    policy_cache.invalidate()
    assert limiter.check(request, group="read", user=client_a, also_get=["hook-present"]).fetched is None
