from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from ratelimit.client_ip import client_ip, rate_limit_address

rf = RequestFactory()


def _request(remote: str, forwarded: str | None = None) -> Any:
    extra: dict[str, Any] = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return rf.get("/", **extra)


def test_without_trusted_proxies_it_ignores_x_forwarded_for(settings: Any) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = []
    assert client_ip(_request("198.51.100.7", "203.0.113.9")) == "198.51.100.7"


def test_an_untrusted_peer_cannot_pose_as_another_address(settings: Any) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(_request("198.51.100.7", "10.0.0.1, 203.0.113.9")) == "198.51.100.7"


def test_behind_a_trusted_proxy_it_takes_the_right_most_untrusted_address(settings: Any) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.1.5"]
    # The client forged "1.2.3.4"; our proxies appended the real client and the inner proxy.
    request = _request("10.0.0.2", "1.2.3.4, 203.0.113.9, 192.168.1.5")
    assert client_ip(request) == "203.0.113.9"


def test_a_trusted_proxy_without_a_forwarded_header_is_the_client(settings: Any) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = ["10.0.0.2"]
    assert client_ip(_request("10.0.0.2")) == "10.0.0.2"


def test_garbage_in_the_header_stops_the_walk(settings: Any) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(_request("10.0.0.2", "203.0.113.9, not-an-ip, 10.0.0.3")) == "10.0.0.2"
    assert client_ip(_request("10.0.0.2", "not-an-ip, 203.0.113.9")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [("2001:db8::1", "2001:db8::1"), ("[2001:db8::1]:443", "2001:db8::1"), ("203.0.113.9:5555", "203.0.113.9")],
)
def test_it_reads_ipv6_and_ports(settings: Any, forwarded: str, expected: str) -> None:
    settings.HLEKKR_TRUSTED_PROXIES = ["::1", "127.0.0.1"]
    assert client_ip(_request("::1", forwarded)) == expected


def test_an_unusable_remote_addr_shares_one_bucket(settings: Any) -> None:
    assert client_ip(_request("")) == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("0.0.0.0", "0.0.0.0"),  # noqa: S104 - a key, not a bind address
    ],
)
def test_rate_limit_keys_mask_ipv6_to_its_64(address: str, key: str) -> None:
    assert rate_limit_address(address) == key
