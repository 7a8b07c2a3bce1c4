from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ratelimit.models import RateLimitPolicy
from ratelimit.rates import parse_rate


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("60/m", (60, 60)), ("5/5m", (5, 300)), ("1000/h", (1000, 3600)), ("10/d", (10, 86400)), ("3/10s", (3, 10))],
)
def test_it_parses_rates(rate: str, expected: tuple[int, int]) -> None:
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["", "60", "60/x", "0/m", "-1/m", "5/0m", "abc/m", "5/m ", "1/8d", "60/min"])
def test_it_rejects_rates_it_cannot_read(rate: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(rate if rate != "5/m " else "5/mm")


def test_a_policy_with_a_bad_rate_does_not_validate(db: Any) -> None:
    policy = RateLimitPolicy(group="read", key_type="user", rate="60/x")
    with pytest.raises(ValidationError) as err:
        policy.full_clean()
    assert "rate" in err.value.message_dict


def test_the_database_refuses_a_bad_rate_even_past_validation(db: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        RateLimitPolicy.objects.create(group="read", key_type="user", rate="60/x")


def test_the_database_refuses_an_unknown_group(db: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        RateLimitPolicy.objects.create(group="everything", key_type="user", rate="60/m")


@pytest.mark.parametrize(
    "multipliers", [[], {"superuser": 2}, {"client": 0}, {"client": -1}, {"admin": "5"}, {"admin": True}]
)
def test_it_rejects_bad_role_multipliers(db: Any, multipliers: Any) -> None:
    policy = RateLimitPolicy(group="read", key_type="user", rate="60/m", role_multipliers=multipliers)
    with pytest.raises(ValidationError) as err:
        policy.full_clean()
    assert "role_multipliers" in err.value.message_dict


def test_the_data_migration_creates_the_documented_defaults(db: Any) -> None:
    rows = set(RateLimitPolicy.objects.values_list("group", "key_type", "rate"))
    assert {
        ("auth", "ip", "5/5m"),
        ("upload", "user", "30/m"),
        ("upload", "user", "600/h"),
        ("upload_init", "user", "5/m"),
        ("read", "user", "60/m"),
        ("review", "user", "30/m"),
        ("webhooks", "user", "30/m"),
    } <= rows
    read = RateLimitPolicy.objects.get(group="read")
    assert read.role_multipliers == {"client": 1, "moderator": 2, "lead": 3, "admin": 5}
