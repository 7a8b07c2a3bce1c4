"""Fetching the media a client's URL names: a direct media URL, or the media a web page points to.

Network rules are the webhooks' (hlekkr/webhooks/ssrf.py): resolve once, refuse private, loopback, link-local and
metadata addresses, connect only to the address checked, re-check every redirect. On top of them a fetch is
bounded (docs/media.md "Analyse a link"):

* at most ``conf.FETCH_MAX_REDIRECTS`` (5) redirects per request;
* a connect timeout that also bounds every single read, and a total deadline for the whole fetch;
* the media at most the direct-upload limit (refused from Content-Length when announced, else when the count
  passes it); an HTML page is read only up to ``conf.FETCH_PAGE_MAX_BYTES`` while looking for its media;
* a page's media is, in order: ``og:video``, ``og:image``, the first ``<video>`` (its ``src`` or first
  ``<source>``), the first ``<img>`` inside ``<main>``/``<article>``, the first other ``<img>`` that does not
  declare itself a pixel; only one page is followed (a page whose media is another page is refused).

This module writes only to the file it is handed (a local temporary file, never storage) and knows nothing of
the ORM; media.services.url_fetch_run turns its result into a stored item. Every refusal is a FetchRefused
with a code of its own.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import IO
from urllib.parse import urljoin, urlsplit

from hlekkr.exceptions import ValidationFailed
from hlekkr.webhooks import ssrf
from media import conf

logger = logging.getLogger(__name__)
CHUNK = 64 * 1024
USER_AGENT = "Hlekkr-MediaFetch/1 (+media integrity analysis)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types a media response may declare; anything else (JSON, PDF, plain text ...) is refused before reading it.
# The bytes are sniffed afterwards exactly like an upload, so a lying image/jpeg still gets refused there.
MEDIA_TYPE_PREFIXES = ("image/", "video/", "audio/")
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/mp4", "application/ogg"})


class FetchRefused(ValidationFailed):
    """The URL, or what it served, cannot become a media item; `code` says why (docs/media.md)."""


@dataclass
class Fetched:
    """What was fetched into the destination file, and the way there (recorded as evidence on the item)."""

    size: int
    content_type: str
    source_url: str
    final_url: str  # where the media bytes came from, after redirects
    page_url: str = ""  # the page that pointed to the media, when the URL was a page
    hops: list[str] = field(default_factory=list)  # every URL requested, in order


def refusal_from(exc: ssrf.DestinationRefused) -> FetchRefused:
    """Our error code for the SSRF rule that refused (DestinationRefused.kind)."""
    message = f"The URL cannot be fetched: {exc.reason}."
    if exc.kind == "invalid":
        return FetchRefused(message, code="url_invalid")
    if exc.kind == "scheme":
        return FetchRefused(message, code="url_scheme_not_allowed")
    if exc.kind == "unresolvable":
        return FetchRefused(message, code="url_unresolvable")
    if exc.kind == "redirects":
        return FetchRefused(message, code="fetch_too_many_redirects")
    return FetchRefused(message, code="url_destination_refused")


def check_url_form(url: str) -> None:
    """What can be said of a URL without the network: an absolute http(s) URL with a host, no credentials."""
    if len(url) > 2048:
        raise FetchRefused("The URL is longer than 2048 characters.", code="url_invalid")
    if "://" not in url:
        raise FetchRefused("This is not a URL; send an absolute http(s) URL.", code="url_invalid")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise FetchRefused("This is not a valid URL.", code="url_invalid") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchRefused(
            f"The scheme {parts.scheme!r} is not allowed; use https or http.", code="url_scheme_not_allowed"
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise FetchRefused("The URL needs a host and no credentials.", code="url_invalid")


def check_source_url(url: str) -> None:
    """The cheap checks done in the request (scheme, host, where it resolves); the worker checks every hop again."""
    check_url_form(url)
    try:
        ssrf.check_url(url, allowed_hosts=conf.fetch_allowed_hosts())
    except ssrf.DestinationRefused as exc:
        raise refusal_from(exc) from None


class _Deadline:
    def __init__(self, total: float, per_read: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.ends = clock() + total
        self.total = total
        self.per_read = per_read

    def timeout(self) -> float:
        """The socket timeout for the next connect or read: never past the deadline."""
        left = self.ends - self.clock()
        if left <= 0:
            raise FetchRefused(f"The fetch took longer than {self.total:g} s.", code="fetch_timeout")
        return min(self.per_read, left)


def _base_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<meta"))


class _MediaLinks(HTMLParser):
    """Collects the candidates for "the media of this page" in one pass."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og_video: list[str] = []
        self.og_image: list[str] = []
        self.videos: list[str] = []
        self.main_images: list[str] = []
        self.images: list[str] = []
        self._main_depth = 0
        self._in_video = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            content = a.get("content", "")
            if content and key in ("og:video", "og:video:url", "og:video:secure_url"):
                self.og_video.append(content)
            elif content and key in ("og:image", "og:image:url", "og:image:secure_url"):
                self.og_image.append(content)
        elif tag in ("main", "article"):
            self._main_depth += 1
        elif tag == "video":
            self._in_video = True
            if a.get("src"):
                self.videos.append(a["src"])
        elif tag == "source" and self._in_video and a.get("src"):
            self.videos.append(a["src"])
        elif tag == "img" and a.get("src"):
            if a.get("width") in ("0", "1") or a.get("height") in ("0", "1"):
                return  # a tracking pixel, not the story's picture
            (self.main_images if self._main_depth else self.images).append(a["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("main", "article") and self._main_depth:
            self._main_depth -= 1
        elif tag == "video":
            self._in_video = False

    def best(self) -> list[str]:
        return self.og_video + self.og_image + self.videos + self.main_images + self.images


def media_url_in_page(html: str, page_url: str) -> str | None:
    """The first http(s) candidate in the page, made absolute against the page's own URL."""
    parser = _MediaLinks()
    try:
        parser.feed(html)
        parser.close()
    except Exception as exc:  # a broken page may still have yielded candidates before the break
        logger.info("page %s did not parse to the end (%s)", page_url, exc.__class__.__name__)
    for candidate in parser.best():
        absolute = urljoin(page_url, candidate)
        if urlsplit(absolute).scheme in ("http", "https"):
            return absolute
    return None


class _Fetcher:
    def __init__(self, deadline: _Deadline, max_bytes: int, allowed_hosts: frozenset[str]):
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.allowed_hosts = allowed_hosts
        self.hops: list[str] = []

    def open(self, url: str) -> ssrf.OpenResponse:
        try:
            opened = ssrf.get(
                url,
                {"User-Agent": USER_AGENT, "Accept": "image/*,video/*,audio/*,text/html;q=0.5"},
                timeout=self.deadline.timeout(),
                max_redirects=conf.FETCH_MAX_REDIRECTS,
                allowed_hosts=self.allowed_hosts,
            )
        except ssrf.DestinationRefused as exc:
            raise refusal_from(exc) from None
        except TimeoutError:
            raise self._timeout() from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchRefused(
                f"Could not fetch the URL ({exc.__class__.__name__}).", code="fetch_connection_failed"
            ) from None
        self.hops.extend(opened.hops)
        status = opened.response.status
        if not 200 <= status < 300:
            opened.close()
            raise FetchRefused(
                f"The URL answered HTTP {status}.", code="fetch_http_error", details={"status": status, "url": url}
            )
        return opened

    def _timeout(self) -> FetchRefused:
        return FetchRefused(f"The fetch took longer than {self.deadline.total:g} s.", code="fetch_timeout")

    def read(self, opened: ssrf.OpenResponse, sink: Callable[[bytes], None], limit: int, *, strict: bool) -> int:
        """Stream the body into `sink`, at most `limit` bytes: past it, refuse (`strict`) or just stop."""
        total = 0
        try:
            while True:
                opened.settimeout(self.deadline.timeout())
                chunk = opened.response.read1(CHUNK)  # one recv: the deadline is checked between them
                if not chunk:
                    return total
                total += len(chunk)
                if total > limit:
                    if strict:
                        raise self.too_large()
                    sink(chunk[: len(chunk) - (total - limit)])
                    return limit
                sink(chunk)
        except TimeoutError:
            raise self._timeout() from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchRefused(
                f"The connection failed while reading ({exc.__class__.__name__}).", code="fetch_connection_failed"
            ) from None

    def too_large(self) -> FetchRefused:
        return FetchRefused(
            f"The media is larger than the {self.max_bytes} bytes allowed.",
            code="fetch_too_large",
            details={"max_bytes": self.max_bytes},
        )

    def announced_too_large(self, opened: ssrf.OpenResponse) -> bool:
        try:
            return int(opened.response.getheader("Content-Length") or 0) > self.max_bytes
        except ValueError:
            return False


def _writer(dest: IO[bytes]) -> Callable[[bytes], None]:
    def write(chunk: bytes) -> None:
        dest.write(chunk)

    return write


def fetch_media(url: str, dest: IO[bytes], *, clock: Callable[[], float] = time.monotonic) -> Fetched:
    """Fetch the media `url` names into `dest` (truncated first on nothing; pass an empty file).

    Raises FetchRefused; on a refusal `dest` may hold a partial body, which the caller discards with the file."""
    deadline = _Deadline(conf.fetch_total_timeout_seconds(), conf.fetch_connect_timeout_seconds(), clock)
    fetcher = _Fetcher(deadline, conf.max_direct_upload_bytes(), conf.fetch_allowed_hosts())
    opened = fetcher.open(url)
    page_url = ""
    head = bytearray()
    try:
        content_type = _base_type(opened.response.getheader("Content-Type"))
        if content_type in HTML_TYPES or content_type == "":
            # An untyped body may be a page or the media itself: look at its start before deciding.
            fetcher.read(opened, head.extend, conf.FETCH_PAGE_MAX_BYTES, strict=False)
            if content_type in HTML_TYPES or _looks_like_html(bytes(head)):
                page_url = opened.url
    except BaseException:
        opened.close()
        raise
    if page_url:
        opened.close()
        media_url = media_url_in_page(head.decode("utf-8", "replace"), page_url)
        if media_url is None:
            raise FetchRefused(
                "The page names no media (no og:video, og:image, <video> or <img>).", code="page_without_media"
            )
        head = bytearray()
        opened = fetcher.open(media_url)
        content_type = _base_type(opened.response.getheader("Content-Type"))
    try:
        if content_type in HTML_TYPES:
            raise FetchRefused("The page's media link leads to another page.", code="page_without_media")
        if not (content_type.startswith(MEDIA_TYPE_PREFIXES) or content_type in GENERIC_TYPES):
            raise FetchRefused(
                f"The URL serves {content_type}, not an image, video or audio file.",
                code="fetch_unsupported_type",
                details={"content_type": content_type},
            )
        if fetcher.announced_too_large(opened):
            raise fetcher.too_large()
        if len(head) > fetcher.max_bytes:
            raise fetcher.too_large()
        dest.write(bytes(head))
        size = len(head) + fetcher.read(opened, _writer(dest), fetcher.max_bytes - len(head), strict=True)
        final_url = opened.url
    finally:
        opened.close()
    if size == 0:
        raise FetchRefused("The URL served an empty body.", code="empty_file")
    return Fetched(
        size=size,
        content_type=content_type,
        source_url=url,
        final_url=final_url,
        page_url=page_url,
        hops=fetcher.hops,
    )
