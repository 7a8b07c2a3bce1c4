"""The OpenAPI schema says what the API does: every error response in the error shape, paginated lists as the
{next, previous, results} pages they are, and request bodies as strict as the serializers that read them.

Found by schemathesis (issue 14, point 4; `tests/security/test_schemathesis.py` runs it in CI): lists were
documented as bare arrays, almost no error statuses were documented, and request bodies allowed the unknown
fields and empty values that validation refuses.

`document_errors` is a drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS). It adds, to every
operation that does not document them itself, the error statuses that apply (each `{"code", "message",
"details"}`, codes in hlekkr/errors.py): 400, 401, 403 and 429 everywhere (any request can be malformed, carry a
bad credential, lack a role or scope, or be rate-limited), 404 where the path names an object, 409 on writes,
413 and 415 where there is a request body. Request bodies get `additionalProperties: false` (every input
serializer is a StrictSerializerMixin: unknown fields are a 400). Rules JSON Schema cannot say (trust_min <=
trust_max, a webhook host that must resolve to a public address) stay in the descriptions.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error: a stable machine code (docs/api-errors.md), a sentence, and details.",
    "properties": {
        "code": {"type": "string", "example": "validation_error"},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
    "required": ["code", "message", "details"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

DESCRIPTIONS = {
    "400": "The request is malformed or fails validation (`validation_error`, `malformed_request`, ...).",
    "401": "No credentials, or credentials that are not valid (`not_authenticated`, `token_expired`, ...).",
    "403": "The caller's role or API key scopes do not allow this (`permission_denied`).",
    "404": "No such object, or not yours (another owner's object is always 404).",
    "409": "The object is not in a state that allows this (`conflict` and more specific codes).",
    "413": "The body is larger than this operation accepts (`payload_too_large`).",
    "415": "The content type, or the media type the bytes turn out to be, is not accepted.",
    "429": "Rate-limited: retry after the `Retry-After` header's seconds (`rate_limited`).",
}
WRITES = {"post", "put", "patch", "delete"}


def _statuses_for(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["400", "401", "403", "429"]
    if "{" in path:
        statuses.append("404")
    if method in WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    return statuses


def _error_response(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if status == "429":
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def _strict_request_bodies(components: dict[str, Any]) -> None:
    for name, schema in components.items():
        if name.endswith("Request") and schema.get("type") == "object" and "additionalProperties" not in schema:
            schema["additionalProperties"] = False


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses_for(path, method, operation) + sorted(responses.keys() & DESCRIPTIONS.keys()):
                documented = responses.get(status) or {}
                if not documented.get("content"):  # a view's own description of an error is kept
                    responses[status] = {**_error_response(status), **documented}
    _strict_request_bodies(schemas)
    revoke = schemas.get("RevokeRequest")
    if revoke is not None:  # `refresh`, or `everywhere: true`: an empty body revokes nothing (400)
        revoke["anyOf"] = [
            {"required": ["refresh"]},
            {"required": ["everywhere"], "properties": {"everywhere": {"enum": [True]}}},
        ]
    return result


def paginated(name: str, item: type[serializers.BaseSerializer]) -> Any:
    """The response schema of a cursor-paginated list of `item` (hlekkr.pagination.CursorPagination)."""
    return inline_serializer(
        name=name,
        fields={
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last."),
            "previous": serializers.URLField(allow_null=True, help_text="The previous page, or null on the first."),
            "results": item(many=True),
        },
    )
