"""Cursor pagination for every list: stable under inserts, no page-number scans."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "-created_at"
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
