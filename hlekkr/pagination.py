"""Cursor pagination for every list: stable under inserts, no page-number scans."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, pagination

from hlekkr.exceptions import ValidationFailed


class CursorPagination(pagination.CursorPagination):
    ordering = "-created_at"
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        # DRF answers a cursor it cannot decode with 404, and one that decodes to a position that is not a value
        # of the ordering field (`p=2026` for a timestamp) with a 500 from the query. Both are a malformed
        # parameter: 400 in the error shape.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (exceptions.NotFound, DjangoValidationError, ValueError, TypeError) as exc:
            raise ValidationFailed(
                "The cursor is not valid: use the `next` or `previous` URL of a page as given.",
                code="invalid_cursor",
                details={"cursor": request.query_params.get(self.cursor_query_param, "")},
            ) from exc
