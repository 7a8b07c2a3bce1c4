"""Sending webhooks without becoming a proxy into our own network (SSRF).

Rules, applied at registration and again before every connection:

* only ``http`` and ``https``, a host, no credentials in the URL;
* the host is resolved once (``socket.getaddrinfo``) and refused if ANY address it resolves to is private,
  loopback, link-local, multicast, reserved, unspecified, otherwise not globally routable, or a cloud metadata
  address; IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the IPv4 address they carry;
* the connection goes to that exact resolved address (the Host header and TLS SNI/certificate check keep the
  name), so a DNS answer that changes between the check and the connect (rebinding) cannot redirect it;
* redirects are not followed blindly: each ``Location`` is checked by the same rules before any connection,
  at most ``MAX_REDIRECTS`` hops.

Loopback is refused too unless ``HLEKKR_WEBHOOKS_ALLOW_LOOPBACK`` is true (tests run a receiver on 127.0.0.1);
metadata and every other private range stay refused even then.

The same rules guard fetching media from a client's URL (media/fetch.py, ``get``): there an operator list of
exact ``host:port`` pairs (``HLEKKR_FETCH_ALLOWED_HOSTS``) may be exempted from the private-address refusal, for
internal sources and for tests; cloud metadata addresses stay refused even for a listed host.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RESPONSE_EXCERPT_BYTES = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata endpoints (AWS IPv4/IPv6, ECS task metadata, Alibaba). Most are link-local anyway;
# listed so the refusal says what they are and so allowing loopback can never let them through.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The URL or an address it leads to is not a place Hlekkr will send requests to.

    `kind` says which rule refused it, so callers can map it to their own error codes: ``invalid`` (not a URL,
    no host, credentials), ``scheme``, ``unresolvable``, ``address`` (private, loopback, metadata, ...),
    ``redirects`` (too many hops)."""

    def __init__(self, reason: str, *, kind: str = "address"):
        self.reason = reason
        self.kind = kind
        super().__init__(reason)


def loopback_allowed() -> bool:
    return bool(settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why Hlekkr will not connect to `ip`, or None when it may."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = address_refusal(embedded)
        return f"{inner} (inside {ip})" if inner else None
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_loopback:
        return None if loopback_allowed() else f"{ip} is a loopback address"
    for attribute, label in (
        ("is_unspecified", "unspecified"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attribute):
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked destination: where to connect (`address`) and what to call it (`host`)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str  # the resolved IP the connection goes to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal IP resolves to itself without a lookup)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise DestinationRefused(f"{host} does not resolve ({exc.__class__.__name__})", kind="unresolvable") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        raw = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        ip = ipaddress.ip_address(raw)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise DestinationRefused(f"{host} does not resolve", kind="unresolvable")
    return addresses


def check_url(url: str, *, allowed_hosts: frozenset[str] = frozenset()) -> Target:
    """Parse, resolve once and check `url`; raise DestinationRefused with the reason when it is not allowed.

    A URL whose exact ``host:port`` is in `allowed_hosts` skips the private-address refusal (never the metadata
    one); the webhooks pass none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL ({exc})", kind="invalid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused(f"scheme {scheme or '(none)'!r} is not allowed; use https or http", kind="scheme")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("credentials in the URL are not allowed", kind="invalid")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefused("the URL has no host", kind="invalid")
    port = port or (443 if scheme == "https" else 80)
    addresses = resolve(host, port)
    listed = f"{host}:{port}".lower() in allowed_hosts
    for ip in addresses:
        refusal = address_refusal(ip)
        if refusal and listed and ip not in METADATA_ADDRESSES and _embedded_ipv4(ip) not in METADATA_ADDRESSES:
            continue  # an operator-listed internal source (never a metadata address)
        if refusal:
            raise DestinationRefused(refusal if str(ip) == host else f"{host} resolves to {refusal}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str  # the start of the body, for the delivery's last_error
    url: str  # the URL that answered (after redirects)
    redirects: int


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address while SNI and certificate checks use the URL's host name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._target = target

    def connect(self) -> None:
        sock = open_socket(self._target, self.timeout)  # type: ignore[arg-type]
        self.sock = self._context.wrap_socket(sock, server_hostname=self._target.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._target = target

    def connect(self) -> None:
        self.sock = open_socket(self._target, self.timeout)  # type: ignore[arg-type]


def open_socket(target: Target, timeout: float) -> socket.socket:
    """The one place a webhook connection is opened: to the checked address, never to a name."""
    return socket.create_connection((target.address, target.port), timeout=timeout)


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    return connection_class(target, timeout)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 10.0) -> Response:
    """POST `body` to `url` under the rules above, re-checking every redirect target before connecting.

    Raises DestinationRefused when a destination is refused, OSError / http.client.HTTPException on network
    failure. 301/302/303 are followed with the same POST as 307/308: a webhook receiver that moved wants the
    event at its new place, and a GET would silently drop it.
    """
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = check_url(current)
        connection = _connection(target, timeout)
        try:
            connection.request("POST", target.path, body=body, headers={**headers, "Host": target.host_header})
            response = connection.getresponse()
            excerpt = response.read(RESPONSE_EXCERPT_BYTES).decode("utf-8", "replace")
            location = response.getheader("Location")
            status = response.status
        finally:
            connection.close()
        if status in REDIRECT_STATUSES and location:
            if hop == MAX_REDIRECTS:
                raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects", kind="redirects")
            current = urljoin(current, location)
            continue
        return Response(status=status, excerpt=excerpt, url=current, redirects=hop)
    raise DestinationRefused(f"more than {MAX_REDIRECTS} redirects", kind="redirects")  # pragma: no cover


@dataclass
class OpenResponse:
    """A GET response still being read: the caller streams `response` and must call `close()`."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    sock: socket.socket | None  # kept: http.client lets go of it when the server will close the connection
    url: str  # the URL that answered (after redirects)
    hops: list[str]  # every URL requested, the first one included

    def settimeout(self, seconds: float) -> None:
        """Bound the next read (the connect used the timeout given to `get`)."""
        if self.sock is not None:
            self.sock.settimeout(seconds)

    def close(self) -> None:
        self.response.close()
        self.connection.close()


def get(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    max_redirects: int,
    allowed_hosts: frozenset[str] = frozenset(),
) -> OpenResponse:
    """GET `url` under the rules above, re-checking every redirect target before connecting; the final
    (non-redirect) response is returned unread so the caller can bound how much and how long it reads.

    `timeout` bounds the connect and each socket read. Raises DestinationRefused (kind ``redirects`` past
    `max_redirects` hops), OSError / http.client.HTTPException on network failure."""
    current = url
    hops: list[str] = []
    for hop in range(max_redirects + 1):
        target = check_url(current, allowed_hosts=allowed_hosts)
        hops.append(current)
        connection = _connection(target, timeout)
        try:
            connection.request("GET", target.path, headers={**headers, "Host": target.host_header})
            sock = connection.sock
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        location = response.getheader("Location")
        if response.status in REDIRECT_STATUSES and location:
            response.close()
            connection.close()
            if hop == max_redirects:
                break
            current = urljoin(current, location)
            continue
        return OpenResponse(response=response, connection=connection, sock=sock, url=current, hops=hops)
    raise DestinationRefused(f"more than {max_redirects} redirects", kind="redirects")
