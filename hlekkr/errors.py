"""The catalogue of the API's error codes: every `code` a client can see in {"code", "message", "details"}.

Clients switch on these codes, so each is written here once with its HTTP status(es) and what it means;
`docs/api-errors.md` is rendered from this list (`python manage.py api_errors --write`), and
tests/test_error_catalogue.py fails when the source raises a code that is not listed here, lists a code no
source raises, or the document is stale. Adding a code: add an `ErrorCode` below, then rewrite the document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    statuses: tuple[int, ...]  # () for a code that is only recorded (audit payloads), never sent
    meaning: str


CATALOGUE: tuple[ErrorCode, ...] = (
    # --- 400: the request is malformed or breaks a rule of the input ------------------------------------------
    ErrorCode("validation_error", (400,), "The body or query failed validation; `details.fields` names each field."),
    ErrorCode("malformed_request", (400,), "The body could not be parsed (bad JSON, bad multipart framing)."),
    ErrorCode("bad_request", (400,), "Django refused the request before a view ran (e.g. a disallowed Host header)."),
    ErrorCode("unexpected_fields", (400,), "The endpoint takes no body, but one was sent."),
    ErrorCode("file_missing", (400,), "A direct upload without the multipart form field `file`."),
    ErrorCode("empty_file", (400,), "The uploaded file has no bytes."),
    ErrorCode("corrupt_file", (400,), "The file is truncated or cannot be decoded as the type its bytes claim."),
    ErrorCode("too_many_pixels", (400,), "The image declares more pixels than the configured limit (50 MP)."),
    ErrorCode("parts_out_of_order", (400,), "Multipart completion listed a part twice or out of ascending order."),
    ErrorCode("missing_parts", (400,), "Multipart completion did not list every part storage expects."),
    ErrorCode("etag_mismatch", (400,), "A listed part's ETag differs from the one storage received."),
    ErrorCode("size_mismatch", (400,), "The assembled upload's size differs from the size declared when it began."),
    ErrorCode("invalid_scopes", (400,), "An API key was asked for with scopes that are not a list of known scopes."),
    ErrorCode("invalid_expiry", (400,), "An API key's expiry is not in the future."),
    ErrorCode("invalid_cursor", (400,), "A list's `cursor` is not one the API handed out: follow `next`/`previous`."),
    ErrorCode("nothing_to_revoke", (400,), "Token revocation got neither `refresh` nor `everywhere: true`."),
    ErrorCode(
        "webhook_url_forbidden", (400,), "The webhook URL is refused (bad scheme, credentials, or a private address)."
    ),
    ErrorCode(
        "url_invalid", (400,), "`media/from-url/`: not an absolute URL, credentials in it, or over 2048 characters."
    ),
    ErrorCode("url_scheme_not_allowed", (400,), "`media/from-url/`: the URL's scheme is not http or https."),
    ErrorCode("url_unresolvable", (400,), "`media/from-url/`: the URL's host does not resolve."),
    ErrorCode(
        "url_destination_refused",
        (400,),
        "`media/from-url/`: the host resolves to a private, loopback, link-local or metadata address (400 in the "
        "request; also a fetch's `source.error` when a redirect or a page's media link leads there).",
    ),
    ErrorCode("batch_empty", (400,), "`batches/`: the batch lists no items."),
    ErrorCode("batch_too_large", (400,), "`batches/`: more than 500 items (`details.max_items`, `details.count`)."),
    ErrorCode(
        "batch_invalid",
        (400,),
        "`batches/`: some entries cannot be analysed; `details.entries` names each (index, code, message): "
        "`invalid_entry`, `duplicate_entry`, `unknown_media`, `media_not_stored`, or a URL code.",
    ),
    ErrorCode("unknown_moderator", (400,), "A lead named a moderator who does not exist."),
    ErrorCode("not_a_moderator", (400, 403), "The user named (400) or the caller (403) is not an active moderator."),
    ErrorCode("replace_required", (400,), "Every reviewer slot is held: name the holder the assignment replaces."),
    ErrorCode("invalid_verdict", (400,), "A review verdict other than authentic, manipulated or inconclusive."),
    ErrorCode("invalid_confidence", (400,), "A review confidence outside 0 to 1."),
    ErrorCode("notes_required", (400,), "A decision that overrides the machine's verdict needs notes."),
    ErrorCode("note_required", (400,), "An escalation needs a note saying why."),
    ErrorCode("gold_verdict_invalid", (400,), "A gold item's accepted verdict must be authentic or manipulated."),
    # --- 401: who is calling is unknown ------------------------------------------------------------------------
    ErrorCode("not_authenticated", (401,), "No credentials were sent (or `/metrics` got no bearer token)."),
    ErrorCode("authentication_failed", (401,), "The credentials were refused (e.g. a wrong username or password)."),
    ErrorCode("invalid_api_key", (401,), "The API key is empty, unknown, revoked or expired."),
    ErrorCode("token_expired", (401,), "The access token has expired: refresh it and retry."),
    ErrorCode(
        "token_not_valid",
        (400, 401),
        "A JWT is malformed, revoked, or a rotated refresh token was reused (401); a refresh token given to "
        "revocation is not valid or not yours (400).",
    ),
    # --- 403: known caller, not allowed -------------------------------------------------------------------------
    ErrorCode("permission_denied", (403,), "The caller's role (or API key scopes) does not allow this operation."),
    ErrorCode("lead_only", (403,), "Only lead moderators may do this (escalated items, assigning work)."),
    ErrorCode("insufficient_seniority", (403,), "Critical items need a senior or lead moderator."),
    ErrorCode(
        "not_assigned",
        (403, 409),
        "The caller does not hold this review item: claim it first (403 to decide or escalate, 409 to release).",
    ),
    ErrorCode("part_token_invalid", (403,), "The multipart part URL's token is not valid for this part."),
    ErrorCode("part_token_expired", (403,), "The multipart part URL has expired; `GET` the upload for fresh URLs."),
    # --- 404: no such thing (or not yours) ----------------------------------------------------------------------
    ErrorCode("not_found", (404,), "No such object or endpoint; another owner's object is also not found."),
    ErrorCode("webhook_not_found", (404,), "No such webhook endpoint of yours."),
    ErrorCode("queue_empty", (404,), "`review/next/`: no review item is waiting for you."),
    # --- 405 / 406 ----------------------------------------------------------------------------------------------
    ErrorCode("method_not_allowed", (405,), "The endpoint does not support this HTTP method."),
    ErrorCode("not_acceptable", (406,), "The `Accept` header asks for a format the endpoint cannot produce."),
    # --- 409: the object's state does not allow it --------------------------------------------------------------
    ErrorCode("conflict", (409,), "The object is not in a state that allows this."),
    ErrorCode("upload_not_active", (409,), "The multipart upload was already completed, aborted or failed."),
    ErrorCode("media_not_stored", (409,), "Only stored media can be analysed."),
    ErrorCode("analysis_in_progress", (409,), "A re-analysis was asked for while one is queued or running."),
    ErrorCode("analysis_pending", (409,), "The evidence bundle needs a completed analysis; none has completed yet."),
    ErrorCode("webhook_limit_reached", (409,), "The account has the maximum number of webhook endpoints."),
    ErrorCode("webhook_endpoint_disabled", (409,), "The webhook endpoint is disabled; enable it first."),
    ErrorCode("already_revoked", (409,), "The API key is already revoked."),
    ErrorCode("item_decided", (409,), "The review item has already been decided."),
    ErrorCode("item_closed", (409,), "The review item expired or was cancelled."),
    ErrorCode("already_decided", (409,), "The moderator has already decided this review item."),
    ErrorCode("already_assigned", (409,), "The moderator already holds this review item."),
    ErrorCode("gold_item_not_decided", (409,), "Only a decided review item can be marked as a gold item."),
    ErrorCode("already_gold", (409,), "The review item is already a gold item."),
    ErrorCode("already_escalated", (409,), "The review item is already escalated."),
    ErrorCode("fully_assigned", (409,), "Every reviewer slot of the item is taken."),
    ErrorCode("at_capacity", (409,), "The moderator holds their maximum number of items; `details` has the counts."),
    ErrorCode("lease_expired", (409,), "The lease on the item expired before the decision; claim it again."),
    # --- 413 / 415 ----------------------------------------------------------------------------------------------
    ErrorCode("payload_too_large", (413,), "The body, file or part exceeds its limit (`details.max_bytes`)."),
    ErrorCode("unsupported_media_type", (415,), "The file's bytes are not an allowed image, video or audio type."),
    ErrorCode("content_type_mismatch", (415,), "The declared content type contradicts the sniffed one."),
    ErrorCode("polyglot_file", (415,), "The file is also another format (e.g. a ZIP or HTML inside an image)."),
    # --- 429: slow down -----------------------------------------------------------------------------------------
    ErrorCode("rate_limited", (429,), "Too many requests in the group named in `details`; wait `Retry-After` seconds."),
    ErrorCode(
        "rate_limit_unavailable",
        (429,),
        "The rate limiter's cache is down and this group fails closed (`auth` by default); retry after `Retry-After`.",
    ),
    # --- 5xx ----------------------------------------------------------------------------------------------------
    ErrorCode("server_error", (500,), "An unexpected error; it was logged, and the body carries no internals."),
    ErrorCode("service_unavailable", (503,), "A component Hlekkr depends on is not available; retry shortly."),
    ErrorCode("transient_error", (503,), "A temporary failure (storage, a model endpoint); the work is retried."),
    ErrorCode("error", (400,), "The generic code of an error that names no more specific one (should not be seen)."),
    # --- recorded only ------------------------------------------------------------------------------------------
    ErrorCode("storage_error", (), "Audit payload of a multipart upload refused because storage failed under it."),
    # --- a URL fetch's refusal, shown on the item (`status: rejected`, `source.error.code`), not as a status -----
    ErrorCode("fetch_too_many_redirects", (), "URL fetch: more than 5 redirects."),
    ErrorCode("fetch_timeout", (), "URL fetch: the server was slower than the connect/read or total time limit."),
    ErrorCode(
        "fetch_too_large", (), "URL fetch: the media is larger than the direct-upload limit (`details.max_bytes`)."
    ),
    ErrorCode("fetch_http_error", (), "URL fetch: the server answered with a non-2xx status."),
    ErrorCode("fetch_connection_failed", (), "URL fetch: the connection failed or broke while reading."),
    ErrorCode("fetch_unsupported_type", (), "URL fetch: the server declared a type that is not image, video or audio."),
    ErrorCode("page_without_media", (), "URL fetch: the page names no og:video, og:image, <video> or <img>."),
    ErrorCode("fetch_internal_error", (), "URL fetch: the fetch failed inside Hlekkr three times."),
    # --- a batch entry's code (`details.entries[].code` of batch_invalid, or an item's `error`) ------------------
    ErrorCode("invalid_entry", (), "Batch entry: not exactly one of `media_id` or `url`."),
    ErrorCode("duplicate_entry", (), "Batch entry: the same media id or URL listed again (`duplicate_of`)."),
    ErrorCode("unknown_media", (), "Batch entry: not an id of one of your media items (unknown and others' alike)."),
    ErrorCode("analysis_failed", (), "Batch item: the item's analysis failed."),
    ErrorCode("fetch_failed", (), "Batch item: the URL fetch ended without media and without a code."),
    ErrorCode(
        "not_enough_labels",
        (),
        "Calibration (admin, `propose_scoring_policy`): too few reviewed items with a usable label to fit or evaluate.",
    ),
    # --- 3xx ---------------------------------------------------------------------------------------------------
    ErrorCode(
        "duplicate_of",
        (303,),
        "A URL's media turned out to be an item you already had: `Location` and `details.id` name it.",
    ),
)

BY_CODE: dict[str, ErrorCode] = {entry.code: entry for entry in CATALOGUE}


def render_markdown() -> str:
    """docs/api-errors.md: the catalogue as a table, in the order above (grouped by status)."""
    lines = [
        "# API error codes",
        "",
        "<!-- Rendered from hlekkr/errors.py by `python manage.py api_errors --write`; do not edit by hand. -->",
        "",
        'Every API error has the shape `{"code": "...", "message": "...", "details": {...}}`. Switch on `code`',
        "(stable) and show `message` (for people; it may change). `details` carries what the code's meaning names.",
        "A code listed with two statuses is sent with the status that fits where it arises.",
        "",
        "| code | status | meaning |",
        "|---|---|---|",
    ]
    for entry in CATALOGUE:
        status = ", ".join(str(s) for s in entry.statuses) or "not sent"
        lines.append(f"| `{entry.code}` | {status} | {entry.meaning} |")
    return "\n".join(lines) + "\n"
