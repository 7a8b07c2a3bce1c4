"""The DRF throttle every API view gets (REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]).

It runs after authentication, so it can key by user or API key; anonymous callers are keyed by client IP.
The view's `ratelimit_group` attribute picks the policies; views without one count as `read` (GET, HEAD,
OPTIONS) or `upload` (writes).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from hlekkr.accounts.authentication import request_api_key
from ratelimit import limiter


class GroupRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        group = limiter.group_for(view, request.method)
        # RateLimited propagates to hlekkr.api.exception_handler: 429, error shape, Retry-After.
        limiter.enforce(request._request, group=group, user=request.user, api_key=request_api_key(request))
        return True

    def wait(self) -> float | None:
        return None
