"""SSRF rules: which addresses are refused, resolution happens once, the connection goes to the checked address."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from hlekkr.webhooks import ssrf


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
    ],
)
def test_it_refuses_non_public_addresses(address: str, settings: Any) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = False
    assert ssrf.address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_it_allows_public_addresses(address: str) -> None:
    assert ssrf.address_refusal(ipaddress.ip_address(address)) is None


def test_allowing_loopback_never_allows_metadata_or_private_addresses(settings: Any) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = True
    assert ssrf.address_refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert ssrf.address_refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    for address in ("169.254.169.254", "fd00:ec2::254", "10.0.0.1", "::ffff:169.254.169.254"):
        assert ssrf.address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://hooks.example.test/x",
        "gopher://hooks.example.test/x",
        "http:///nohost",
        "https://user:pass@hooks.example.test/x",
        "http://hooks.example.test:99999/x",
        "not a url",
    ],
)
def test_it_refuses_urls_that_are_not_plain_http(url: str, fake_dns: Any) -> None:
    fake_dns({"hooks.example.test": ["8.8.8.8"]})
    with pytest.raises(ssrf.DestinationRefused):
        ssrf.check_url(url)


def test_a_name_with_any_private_address_is_refused(fake_dns: Any) -> None:
    fake_dns({"mixed.example.test": ["8.8.8.8", "10.1.2.3"]})
    with pytest.raises(ssrf.DestinationRefused, match=r"10\.1\.2\.3"):
        ssrf.check_url("https://mixed.example.test/hook")


def test_a_name_that_does_not_resolve_is_refused(fake_dns: Any) -> None:
    fake_dns({})
    with pytest.raises(ssrf.DestinationRefused, match="does not resolve"):
        ssrf.check_url("https://nowhere.example.test/hook")


def test_a_public_name_is_resolved_once_and_pinned(fake_dns: Any) -> None:
    looked_up = fake_dns({"hooks.example.test": ["8.8.8.8"]})
    target = ssrf.check_url("https://hooks.example.test:8443/in?x=1")
    assert (target.address, target.host, target.port, target.path) == ("8.8.8.8", "hooks.example.test", 8443, "/in?x=1")
    assert target.host_header == "hooks.example.test:8443"
    assert looked_up == ["hooks.example.test"]


def test_the_connection_goes_to_the_resolved_address_with_the_name_in_host(
    receiver: Any, fake_dns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once; the socket is opened to that address, whatever DNS says later."""
    looked_up = fake_dns({"hooks.example.test": ["127.0.0.1"]})
    opened: list[tuple[str, int]] = []
    real_open = ssrf.open_socket

    def spy(target: ssrf.Target, timeout: float) -> Any:
        opened.append((target.address, target.port))
        return real_open(target, timeout)

    monkeypatch.setattr(ssrf, "open_socket", spy)
    response = ssrf.post(f"http://hooks.example.test:{receiver.port}/hook", b"{}", {"Content-Type": "application/json"})
    assert response.status == 200
    assert opened == [("127.0.0.1", receiver.port)]
    assert looked_up == ["hooks.example.test"]
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_redirect_to_metadata_is_refused_before_any_connection(
    receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    opened: list[str] = []
    real_open = ssrf.open_socket
    monkeypatch.setattr(ssrf, "open_socket", lambda t, timeout: opened.append(t.address) or real_open(t, timeout))  # type: ignore[func-returns-value]
    with pytest.raises(ssrf.DestinationRefused, match="metadata"):
        ssrf.post(receiver.url, b"{}", {})
    assert opened == ["127.0.0.1"]


def test_redirects_are_followed_with_the_same_post_up_to_three_hops(receiver: Any) -> None:
    receiver.replies = [(307, {"Location": "/a"}), (308, {"Location": "/b"}), (302, {"Location": "/c"}), (204, {})]
    response = ssrf.post(receiver.url, b'{"x":1}', {"Content-Type": "application/json"})
    assert (response.status, response.redirects) == (204, 3)
    assert [r.path for r in receiver.requests] == ["/hook", "/a", "/b", "/c"]
    assert all(r.body == b'{"x":1}' for r in receiver.requests)


def test_a_fourth_redirect_is_refused(receiver: Any) -> None:
    receiver.reply(302, {"Location": "/again"})
    with pytest.raises(ssrf.DestinationRefused, match="redirects"):
        ssrf.post(receiver.url, b"{}", {})
    assert len(receiver.requests) == 4
