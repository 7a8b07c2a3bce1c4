"""The client's address: REMOTE_ADDR, unless that is a trusted proxy (settings.HLEKKR_TRUSTED_PROXIES, IPs or
CIDRs), in which case the right-most address in X-Forwarded-For that is not itself a trusted proxy.

Why right-most: every proxy appends the address it received the connection from, so only the entries our own
proxies added are trustworthy; anything to the left of them was written by the client and can be anything.
A client that sends its own X-Forwarded-For therefore changes nothing: without a trusted proxy the header is
ignored, and behind one the proxy appends the real address after the forged ones.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def networks_setting(name: str) -> tuple[IPNetwork, ...]:
    """A list-of-CIDRs setting, parsed once per distinct value (settings overrides in tests change it)."""
    return _networks(tuple(getattr(settings, name, []) or []))


def trusted_networks() -> tuple[IPNetwork, ...]:
    return networks_setting("HLEKKR_TRUSTED_PROXIES")


@lru_cache(maxsize=4096)
def parse_address(value: str) -> IPAddress | None:
    """An address as written in REMOTE_ADDR or an X-Forwarded-For hop ([v6]:port and v4:port accepted), with
    IPv4-mapped IPv6 unwrapped; None if it is not an address. Remembered (addresses are immutable): the
    limiter parses the same few peers on every request, and `ipaddress` costs ~8 us a parse."""
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request: Any) -> str:
    """The address to key anonymous limits and logs by. Never raises; '0.0.0.0' if REMOTE_ADDR is unusable."""
    meta = request.META
    remote = parse_address(meta.get("REMOTE_ADDR", "") or "")
    if remote is None:
        # A rate-limit key, not a bind address: all unusable peers share one bucket.
        return "0.0.0.0"  # noqa: S104  # nosec B104
    networks = trusted_networks()
    if not networks or not in_networks(remote, networks):
        return str(remote)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "") or ""
    for hop in reversed(forwarded.split(",")):
        address = parse_address(hop)
        if address is None:
            # Our proxies write well-formed addresses; garbage means we have reached client-written text.
            break
        if not in_networks(address, networks):
            return str(address)
    # Nothing untrusted (or garbage) to the left: the last trusted hop is the best we know.
    return str(remote)


IPV6_KEY_PREFIX = 64


def rate_limit_address(address: str) -> str:
    """What an anonymous caller is counted by: its IPv4 address, or the /64 its IPv6 address is in.

    One IPv6 subscriber gets a whole /64 (often more) and may rotate through it at will, so counting single v6
    addresses would let it escape every `ip` window; django-ratelimit masks v6 to /64 for the same reason.
    """
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_KEY_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address
