"""Content-Security-Policy on every response: scripts, styles and everything else from Hlekkr itself only.

The dashboard and status pages are written for this (no inline scripts or styles, htmx configured never to
eval or inject a <style>); tests/review/test_browser.py drives them under it and fails on any violation.
Media shown to moderators comes from storage: on S3 that is another origin (presigned URLs), added to img-src
and media-src. Swagger UI (/api/docs/) loads its bundle from a CDN, so that one page also allows the CDN.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

SWAGGER_UI_CDN = "https://cdn.jsdelivr.net"


def storage_origins() -> list[str]:
    """Where presigned media URLs point: the configured S3 endpoint, or the bucket's AWS hosts."""
    bucket = getattr(settings, "AWS_STORAGE_BUCKET_NAME", "")
    if not bucket:
        return []  # filesystem storage: media is served by Hlekkr itself (/api/v1/files/...)
    endpoint = getattr(settings, "AWS_S3_ENDPOINT_URL", None)
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    region = getattr(settings, "AWS_S3_REGION_NAME", "us-east-1")
    return [f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"]


def build_policy(*, extra_media: list[str] | None = None, cdn: str | None = None) -> str:
    media = " ".join(["'self'", "data:", "blob:", *(extra_media or [])])
    code = f"'self' {cdn}" if cdn else "'self'"
    directives = {
        "default-src": "'self'",
        "script-src": code,
        "style-src": code,
        "img-src": f"{media} {cdn}" if cdn else media,
        "media-src": media,
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        origins = storage_origins()
        self.policy = build_policy(extra_media=origins)
        self.swagger_policy = build_policy(extra_media=origins, cdn=SWAGGER_UI_CDN)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            swagger = request.path.startswith("/api/docs/")
            response["Content-Security-Policy"] = self.swagger_policy if swagger else self.policy
        return response
