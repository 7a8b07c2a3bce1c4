"""Upload limits and timings for the media app.

Each knob is read from Django settings only; hlekkr/settings.py parses the environment (with the defaults of
issue 3) through the bounded readers of hlekkr/env.py, and `check()` runs at start-up (MediaConfig.ready). They
are infrastructure limits (what the web tier and the bucket are sized for), so they live in env rather than in
an admin-edited model; see docs/media.md.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MiB = 1024 * 1024
GiB = 1024 * MiB


def max_direct_upload_bytes() -> int:
    """Largest body accepted by `POST media/` (default 25 MiB)."""
    return int(settings.HLEKKR_MAX_DIRECT_UPLOAD_BYTES)


def max_multipart_bytes() -> int:
    """Global ceiling for a multipart upload (default 5 GiB); per-role values can only lower it."""
    return int(settings.HLEKKR_MAX_MULTIPART_BYTES)


def max_multipart_bytes_for(role: str) -> int:
    """Per-role maximum: HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE="client=2147483648,admin=5368709120"."""
    ceiling = max_multipart_bytes()
    return min(ceiling, multipart_bytes_by_role().get(role, ceiling))


def multipart_bytes_by_role() -> dict[str, int]:
    raw = settings.HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE
    per_role: dict[str, int] = {}
    if isinstance(raw, dict):
        per_role = {str(k): int(v) for k, v in raw.items()}
    elif raw:
        for pair in str(raw).split(","):
            name, sep, value = pair.strip().partition("=")
            if not sep or not value.strip().isdigit():
                raise ImproperlyConfigured(f"HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE: bad entry {pair!r} (role=bytes)")
            per_role[name.strip()] = int(value)
    return per_role


def check() -> None:
    """Raise ImproperlyConfigured for what the bounds of hlekkr/env.py cannot judge (run at MediaConfig.ready)."""
    multipart_bytes_by_role()
    fetch_allowed_hosts()


def max_image_pixels() -> int:
    """Images with more pixels are refused from their header, before any decoding (default 50 megapixels)."""
    return int(settings.HLEKKR_MAX_IMAGE_PIXELS)


def part_url_ttl_seconds() -> int:
    """Presigned (or signed filesystem) part URLs expire after this many seconds (default 15 minutes)."""
    return int(settings.HLEKKR_PART_URL_TTL)


def stale_upload_hours() -> int:
    """Multipart uploads still incomplete after this many hours are aborted by the periodic task."""
    return int(settings.HLEKKR_STALE_UPLOAD_HOURS)


def download_url_ttl_seconds() -> int:
    """Lifetime of the download URL in a detail body (default 300 s, as `download_url_expires_in` says); the URL
    is signed for each response, never taken from the detail cache."""
    return int(settings.HLEKKR_MEDIA_DOWNLOAD_URL_TTL)


DETAIL_CACHE_SECONDS = 300
MIN_PART_SIZE = 8 * MiB
MAX_PARTS = 10_000


# --- fetching media from a URL (media/fetch.py, docs/media.md "Analyse a link") -------------------------------
FETCH_MAX_REDIRECTS = 5
FETCH_PAGE_MAX_BYTES = 2 * MiB  # an HTML page is read only this far looking for its media


def fetch_allowed_hosts() -> frozenset[str]:
    """`host:port` pairs exempt from the private-address refusal (HLEKKR_FETCH_ALLOWED_HOSTS, empty by default):
    internal sources an operator trusts, and the loopback servers of tests. Never a public host's business."""
    raw = settings.HLEKKR_FETCH_ALLOWED_HOSTS
    entries = raw if isinstance(raw, list | tuple | set | frozenset) else str(raw).split(",")
    allowed = set()
    for entry in entries:
        text = str(entry).strip().lower()
        if not text:
            continue
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ImproperlyConfigured(f"HLEKKR_FETCH_ALLOWED_HOSTS: bad entry {entry!r} (host:port)")
        allowed.add(f"{host.strip('[]')}:{int(port)}")
    return frozenset(allowed)


def fetch_connect_timeout_seconds() -> float:
    """Connect timeout, and the longest wait for any one read, when fetching a URL (default 5 s)."""
    return float(settings.HLEKKR_FETCH_CONNECT_TIMEOUT)


def fetch_total_timeout_seconds() -> float:
    """The whole fetch (page, redirects and media) must finish within this (default 30 s)."""
    return float(settings.HLEKKR_FETCH_TOTAL_TIMEOUT)


def orphan_grace_seconds() -> int:
    """How old a storage intent must be before its bytes count as orphaned (HLEKKR_ORPHAN_GRACE_SECONDS, 1 h):
    longer than any upload request or abort can take, so work in flight is never swept."""
    return int(settings.HLEKKR_ORPHAN_GRACE_SECONDS)
