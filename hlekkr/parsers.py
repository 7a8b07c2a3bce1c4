"""JSON bodies are small: refuse oversize ones from Content-Length before reading a byte."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers

from hlekkr.exceptions import PayloadTooLarge


class LimitedJSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes.", details={"limit": limit})
        return super().parse(stream, media_type, parser_context)
