"""The cache (Redis) unreachable: reads and writes fail open, auth fails closed. A dead port, no Redis needed."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from hlekkr.accounts.models import User
from ratelimit import metrics
from ratelimit.policies import policy_cache


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


@pytest.fixture
def redis_down(settings: Any, set_policy: Callable) -> Iterator[None]:
    set_policy("read", "2/m")
    policy_cache.windows("read")  # loaded while the cache worked
    settings.CACHES = {
        "default": {
            "BACKEND": "ratelimit.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_dead_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield


def _errors(group: str, outcome: str) -> float:
    return metrics.backend_errors_total.labels(group, outcome)._value.get()


def test_reads_fail_open_with_a_logged_error_and_a_metric(
    redis_down: None, api_as: Any, client_a: User, caplog: Any
) -> None:
    before = _errors("read", "open")
    client = api_as(client_a)
    with caplog.at_level(logging.ERROR, logger="ratelimit.limiter"):
        statuses = [client.get("/api/v1/probe/read/").status_code for _ in range(5)]
    assert statuses == [200] * 5  # above the limit of 2: nothing is counted, nothing refused
    assert _errors("read", "open") - before == 5
    assert "rate-limit cache unreachable" in caplog.text
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1  # one line per outage


def test_login_fails_closed_with_retry_after(redis_down: None, client_a: User) -> None:
    before = _errors("auth", "closed")
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "client_a", "password": "whatever-password"}, format="json"
    )
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limit_unavailable"
    assert response["Retry-After"].isdigit()
    assert _errors("auth", "closed") - before == 1


def test_responses_without_a_count_carry_no_rate_limit_headers(redis_down: None, api_as: Any, client_a: User) -> None:
    response = api_as(client_a).get("/api/v1/probe/read/")
    assert response.status_code == 200 and "X-RateLimit-Limit" not in response
