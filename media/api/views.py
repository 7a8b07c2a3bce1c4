"""Media API: direct upload, list, detail (ETag + server cache), delete, multipart uploads, filesystem part PUTs
and filesystem downloads. Validation of input here; every rule and write in media.services."""

from __future__ import annotations

from typing import Any

import magic
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hlekkr.accounts.authentication import request_api_key, request_user
from hlekkr.api import error_body, plain_caller
from hlekkr.exceptions import NotFound, PayloadTooLarge, RateLimited, ValidationFailed
from hlekkr.openapi import paginated
from media import conf, detail_cache, multipart, selectors, services, storage
from media.api import serializers as s
from media.api import uploads
from media.models import MediaItem, MultipartUpload, UploadState
from ratelimit import limiter

# Multipart form overhead allowed above the file itself before the body is refused unread.
FORM_OVERHEAD = 64 * 1024
MEDIA_SCOPES = {"GET": "media:read", "HEAD": "media:read", "POST": "media:write", "DELETE": "media:write"}


class _MethodGroups:
    """`ratelimit_group` by HTTP method, for paths that serve a read and a write."""

    ratelimit_groups: dict[str, str] = {}
    request: Any

    @property
    def ratelimit_group(self) -> str:
        method = (getattr(getattr(self, "request", None), "method", None) or "GET").upper()
        return self.ratelimit_groups.get(method, "read")


def _absolute(request: Request | HttpRequest, url: str | None) -> str | None:
    if url and url.startswith("/"):
        return request.build_absolute_uri(url)
    return url


def _ticket_body(request: Request, upload: MultipartUpload, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "upload_id": str(upload.id),
        "media_id": str(upload.media_id),
        "state": upload.state,
        "size": upload.declared_size,
        "part_size": upload.part_size,
        "part_count": upload.part_count,
        "expires_at": upload.expires_at.isoformat().replace("+00:00", "Z"),
        "parts": [{"part_number": p["part_number"], "url": _absolute(request, p["url"])} for p in parts],
    }


def _result_response(request: Request, result: services.UploadResult) -> Response:
    body = selectors.media_item_detail_body(result.item, include_details=False)
    body["download_url"] = _absolute(request, body.get("download_url"))
    body["duplicate"] = result.duplicate
    return Response(body, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED)


# Query strings and Accept headers the cached detail answers itself; anything else goes through DRF (which
# validates the query, negotiates `Accept: text/html` into a 406 or `application/json; indent=4` into indented
# JSON, and so on). The list answers only the first page without any query itself.
_FAST_QUERIES = {"": False, "include_details=false": False, "include_details=true": True}
_FAST_ACCEPTS = frozenset({"", "*/*", "application/json"})


class _CountedBeforeDRF:
    """For views that answer some GETs before DRF (`dispatch`): a request the limiter already counted there and
    then handed to DRF (a refusal, a miss, trouble) is not counted again; a refusal is raised as DRF would."""

    def check_throttles(self, request: Request) -> None:
        if getattr(request._request, "ratelimit_counted", False):
            decision = getattr(request._request, "ratelimit_decision", None)
            if decision is not None and decision.refused:
                raise decision.error()
            return  # counted once already, before DRF
        super().check_throttles(request)  # type: ignore[misc]


class MediaCollectionView(_MethodGroups, _CountedBeforeDRF, APIView):
    """GET: own items (filters, cursor pagination). POST: direct upload (multipart form field `file`).

    The first page without any query, which clients poll, is answered before DRF (`_first_page`), as the cached
    detail is: the caller authenticated and checked by the view's own classes, counted by the limiter, the page
    read and paginated by the same selector and paginator, rendered by the same JSON renderer, with the headers
    DRF sets. Anything else (a query, another Accept, a refusal, an error) is DRF's."""

    ratelimit_groups = {"GET": "read", "POST": "upload"}
    required_scopes = MEDIA_SCOPES
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "GET":
            response = self._first_page(request)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _first_page(self, request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        if meta.get("QUERY_STRING", "") or meta.get("HTTP_ACCEPT", "") not in _FAST_ACCEPTS:
            return None
        if list(self.renderer_classes) != [JSONRenderer]:  # then DRF negotiates (and adds Vary: Accept)
            return None
        caller = plain_caller(self, request)
        if caller is None:
            return None
        user, _ = caller
        request.ratelimit_counted = True  # type: ignore[attr-defined]  # check_throttles: not again
        try:
            limiter.enforce(request, group=limiter.group_for(self, "GET"), user=user, api_key=request_api_key(request))
        except RateLimited:
            return None  # DRF raises the decision's error (check_throttles), in the error shape
        try:
            paginator = self.paginator
            page = paginator.paginate_queryset(
                selectors.media_items_first_page(owner=user), Request(request), view=self
            )
            body = paginator.get_paginated_response([selectors.media_list_row(row) for row in page]).data
        except Exception:  # a database outage, say: DRF reads again and answers it in the error shape
            return None
        return HttpResponse(
            JSONRenderer().render(body),
            content_type="application/json",
            headers={"Allow": ", ".join(self.allowed_methods)},
        )

    @extend_schema(
        parameters=[s.MediaListFilters],
        responses=paginated("PaginatedMediaList", s.MediaListRow),
        operation_id="media_list",
        summary="List own media items",
    )
    def get(self, request: Request) -> Response:
        if request.query_params:
            filters = s.MediaListFilters(data=request.query_params.dict())
            filters.is_valid(raise_exception=True)
            data = {k: v for k, v in filters.validated_data.items() if k not in ("cursor", "page_size")}
            items = selectors.media_items_list(owner=request_user(request), **data).values(*selectors.LIST_ROW_FIELDS)
        else:  # the first page, which clients poll: no serializer, and SQL compiled once (selectors)
            items = selectors.media_items_first_page(owner=request_user(request))
        paginator = self.paginator
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response([selectors.media_list_row(row) for row in page])

    @property
    def paginator(self) -> Any:
        if not hasattr(self, "_paginator"):
            from hlekkr.pagination import CursorPagination

            self._paginator = CursorPagination()
        return self._paginator

    @extend_schema(
        request={"multipart/form-data": s.DirectUploadInput},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
        summary="Upload a file directly (200 with duplicate=true when the bytes are already yours)",
    )
    def post(self, request: Request) -> Response:
        # Refuse an oversized body before Django spools it (Content-Length is known for form posts).
        limit = conf.max_direct_upload_bytes()
        try:
            declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared_length = 0
        if declared_length > limit + FORM_OVERHEAD:
            raise PayloadTooLarge(
                f"Direct uploads are limited to {limit} bytes; use a multipart upload for larger files.",
                code="payload_too_large",
                details={"max_bytes": limit},
            )
        # Hash, sniff and validate the file while the body arrives, and on S3 store it at the same time (one
        # pass; media/api/uploads.py).
        owner = request_user(request)
        expected = uploads.prepare_streaming(request._request) if multipart.is_s3() else None
        request._request.upload_handlers = [
            uploads.InspectingUploadHandler(
                request._request,
                max_bytes=limit,
                owner_key=lambda media_id: storage.original_key_for(owner.pk, media_id),
                expected_length=expected,
            )
        ]
        form = s.DirectUploadInput(data=request.data)
        if not form.is_valid():
            if "file" in form.errors and "file" not in request.data:
                raise ValidationFailed("Send the file in the multipart form field `file`.", code="file_missing")
            raise ValidationFailed(details={"fields": form.errors})
        uploaded = form.validated_data["file"]
        result = services.media_item_create_from_upload(
            owner=owner,
            uploaded_file=uploaded,
            filename=uploaded.name,
            declared_content_type=uploaded.content_type,
            review_requested=form.validated_data["review_requested"],
            priority=form.validated_data["priority"],
        )
        return _result_response(request, result)


FROM_URL_EXAMPLE_RESPONSE: dict[str, Any] = {
    "id": "6f1c2a9e-4b1d-4c55-9d0e-2f7f3f5a9b10",
    "kind": "",
    "status": "fetching",
    "analysis_status": "",
    "trust_score": None,
    "source": {
        "url": "https://news.example/story/123",
        "page_url": None,
        "final_url": None,
        "redirects": 0,
        "hops": [],
        "other_host": False,
        "state": "pending",
        "error": None,
    },
}


class MediaFromUrlView(APIView):
    """POST: analyse the media a URL names (a direct media URL, or the og:video/og:image, <video> or <img>
    of a page). 202 with the placeholder item; the worker fetches, then the normal upload path runs."""

    ratelimit_group = "upload"
    required_scopes = MEDIA_SCOPES

    @extend_schema(
        request=s.FromUrlInput,
        responses={
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="The item, status `fetching`; poll it"),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="url_invalid, url_scheme_not_allowed, url_unresolvable, url_destination_refused",
            ),
        },
        summary="Analyse the media at a URL (fetched by a worker, SSRF-safe)",
        examples=[
            OpenApiExample("A news page", value={"url": "https://news.example/story/123"}, request_only=True),
            OpenApiExample(
                "A direct link, urgent",
                value={"url": "https://cdn.example/v.mp4", "priority": "urgent"},
                request_only=True,
            ),
            OpenApiExample("Accepted", value=FROM_URL_EXAMPLE_RESPONSE, response_only=True, status_codes=["202"]),
            OpenApiExample(
                "Refused",
                value={
                    "code": "url_destination_refused",
                    "message": "The URL cannot be fetched: 10.0.0.5 is a private address.",
                    "details": {},
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        form = s.FromUrlInput(data=request.data)
        form.is_valid(raise_exception=True)
        job = services.url_fetch_start(owner=request_user(request), **form.validated_data)
        body = selectors.media_item_detail_body(job.media, include_details=False)
        body["download_url"] = None
        headers = {"Location": request.build_absolute_uri(reverse("media-item", args=[job.media_id]))}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


class MediaItemView(_MethodGroups, _CountedBeforeDRF, APIView):
    """GET: detail with ETag / If-None-Match and a 300 s server cache. DELETE: item and stored objects.

    An item created from a URL whose bytes the client already had answers 303 See Other to that item.

    A cached GET is answered before DRF (`_cached_get`): the caller is authenticated and checked by the view's
    own authentication and permission classes, the rate limiter counts it and reads the cached body in the same
    Redis round trip, and the body goes out as the bytes it was rendered to when cached, with the headers DRF
    would have set. Everything else (a miss, a refusal, an unusual query or Accept) is DRF's as before; the
    limiter then does not count the request twice."""

    ratelimit_groups = {"GET": "read", "DELETE": "upload"}
    required_scopes = MEDIA_SCOPES

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "GET":
            response = self._cached_get(request, kwargs["media_id"])
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _cached_get(self, request: HttpRequest, media_id: Any) -> HttpResponse | None:
        include_details = _FAST_QUERIES.get(request.META.get("QUERY_STRING", ""))
        if include_details is None or request.META.get("HTTP_ACCEPT", "") not in _FAST_ACCEPTS:
            return None
        if not detail_cache.enabled():
            return None
        caller = plain_caller(self, request)
        if caller is None:
            return None
        user, _ = caller
        keys = detail_cache.read_keys(media_id, include_details=include_details)
        group = limiter.group_for(self, "GET")
        request.ratelimit_counted = True  # type: ignore[attr-defined]  # check_throttles: not again
        try:
            decision = limiter.enforce(request, group=group, user=user, api_key=request_api_key(request), also_get=keys)
        except RateLimited:
            return None  # DRF raises the decision's error (check_throttles), in the error shape
        if decision.fetched is not None:
            looked_up = detail_cache.entry_from(decision.fetched, keys, owner_id=user.pk)
        else:
            looked_up = detail_cache.lookup(media_id, owner_id=user.pk, include_details=include_details)
        entry = looked_up[0]
        if entry is None or "json" not in entry:
            request.media_detail_looked_up = looked_up  # type: ignore[attr-defined]  # the miss renders from it
            return None
        etag = entry["etag"]
        headers = {"ETag": etag, "Allow": ", ".join(self.allowed_methods)}
        if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            not_modified = HttpResponse(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
            del not_modified["Content-Type"]  # as DRF's empty Response
            return not_modified
        url = None
        if entry["body"].get("download_url"):
            # Signed afresh for every response, so it always has its whole documented lifetime ahead of it.
            url = _absolute(
                request, storage.download_url(entry["storage_key"], expires=conf.download_url_ttl_seconds())
            )
        content = detail_cache.render_hit(entry["json"], url)
        return HttpResponse(
            content, content_type="application/json", headers={**headers, "Cache-Control": "private, no-cache"}
        )

    @extend_schema(
        parameters=[OpenApiParameter("include_details", bool, description="Add per-detector results")],
        responses={200: OpenApiTypes.OBJECT, 303: OpenApiTypes.OBJECT, 304: None},
        summary="One media item (303 to the existing item when a URL fetch found bytes you already had)",
    )
    def get(self, request: Request, media_id: str) -> Response:
        include_details = False
        if request.query_params:  # the common read has none: skip building a serializer for nothing
            query = s.DetailQuery(data=request.query_params.dict())
            query.is_valid(raise_exception=True)
            include_details = bool(query.validated_data["include_details"])
        try:
            body, etag = selectors.media_item_detail(
                owner=request_user(request),
                media_id=media_id,
                include_details=include_details,
                looked_up=getattr(request._request, "media_detail_looked_up", None),
            )
        except NotFound:
            target = selectors.duplicate_fetch_target(owner=request_user(request), media_id=media_id)
            if target is None:
                raise
            location = reverse("media-item", args=[target.pk])
            if request.query_params:
                location += "?" + request.query_params.urlencode()
            body = error_body("duplicate_of", "This URL's media is an item you already have.", {"id": str(target.pk)})
            return Response(
                body, status=status.HTTP_303_SEE_OTHER, headers={"Location": request.build_absolute_uri(location)}
            )
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        body["download_url"] = _absolute(request, body.get("download_url"))
        return Response(body, headers={"ETag": etag, "Cache-Control": "private, no-cache"})

    @extend_schema(responses={204: None}, summary="Delete a media item and its stored objects")
    def delete(self, request: Request, media_id: str) -> Response:
        services.media_item_delete(owner=request_user(request), media_id=media_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadStartView(APIView):
    ratelimit_group = "upload_init"
    required_scopes = MEDIA_SCOPES

    @extend_schema(request=s.MultipartStartInput, responses={201: s.MultipartTicketOutput})
    def post(self, request: Request) -> Response:
        form = s.MultipartStartInput(data=request.data)
        form.is_valid(raise_exception=True)
        ticket = services.multipart_upload_start(owner=request_user(request), **form.validated_data)
        return Response(_ticket_body(request, ticket.upload, ticket.parts), status=status.HTTP_201_CREATED)


class UploadView(_MethodGroups, APIView):
    """GET: parts received so far and fresh URLs for missing ones (resume). DELETE: abort."""

    ratelimit_groups = {"GET": "read", "DELETE": "upload"}
    required_scopes = MEDIA_SCOPES

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Parts received so far, fresh URLs for missing ones")
    def get(self, request: Request, upload_id: str) -> Response:
        status_info = services.multipart_upload_status(owner=request_user(request), upload_id=upload_id)
        upload = status_info["upload"]
        body = _ticket_body(request, upload, status_info["parts"])
        body["parts_received"] = status_info["parts_received"]
        body["missing_parts"] = status_info["missing_parts"]
        body["failure_reason"] = upload.failure_reason
        return Response(body)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        upload = services.upload_get_owned(owner=request_user(request), upload_id=upload_id)
        services.multipart_upload_abort(upload=upload, actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadCompleteView(APIView):
    ratelimit_group = "upload"
    required_scopes = MEDIA_SCOPES

    @extend_schema(request=s.MultipartCompleteInput, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, upload_id: str) -> Response:
        form = s.MultipartCompleteInput(data=request.data)
        form.is_valid(raise_exception=True)
        result = services.multipart_upload_complete(
            owner=request_user(request), upload_id=upload_id, parts=form.validated_data["parts"]
        )
        response = _result_response(request, result)
        response.data["upload_id"] = upload_id
        return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


class UploadPartView(APIView):
    """Filesystem twin of S3 UploadPart: `PUT ...?token=` with the raw part as the body; answers with the
    part's MD5 as a quoted `ETag` header, as S3 does. The token (signed, salted, expiring) names this upload
    and this part only; it is the whole authorisation, exactly like a presigned URL.

    Rate limiting: parts are not uploads. On S3 they never reach Hlekkr, and here their number is bounded by
    the upload's part_count, whose start is limited by `upload_init`; so parts have their own group, which
    has no default policy (an operator can add one in admin)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    ratelimit_group = "upload_part"
    parser_classes: list[Any] = []  # the body is streamed from the WSGI input, never parsed

    @extend_schema(request={"application/octet-stream": bytes}, responses={200: None})
    def put(self, request: Request, upload_id: str, part_number: int) -> HttpResponse:
        problem = multipart.part_token_check(
            request.query_params.get("token", ""), upload_id=upload_id, part_number=part_number
        )
        if problem is not None:
            message = "The part URL has expired." if problem == "part_token_expired" else "The part URL is not valid."
            return _json_error(403, problem, message)
        if multipart.is_s3():
            return _json_error(404, "not_found", "Parts go to storage directly.")
        upload = MultipartUpload.objects.filter(pk=upload_id).only("id", "state", "part_size", "part_count").first()
        if upload is None or part_number > upload.part_count:
            return _json_error(404, "not_found", "No such upload part.")
        if upload.state != UploadState.ACTIVE:
            return _json_error(409, "upload_not_active", "This upload is not active.")
        stored = multipart.fs_part_write(upload.id, part_number, request._request, max_bytes=upload.part_size)
        if stored is None:
            return _json_error(413, "payload_too_large", f"A part holds at most {upload.part_size} bytes.")
        response = HttpResponse(status=200)
        response["ETag"] = f'"{stored.etag}"'
        return response


def download_file(request: HttpRequest, token: str) -> HttpResponse | FileResponse:
    """Serve a filesystem download granted by media.storage.download_url (streamed, never loaded whole)."""
    key = storage.download_token_key(token)
    if key is None:
        return _json_error(404, "not_found", "No such file, or the link has expired.")
    try:
        # Opened rather than checked first: the item may be deleted between a check and the open.
        handle = default_storage.open(key, "rb")
    except FileNotFoundError:
        return _json_error(404, "not_found", "No such file, or the link has expired.")
    item = MediaItem.objects.filter(storage_key=key).only("mime_type").first()
    if item is not None and item.mime_type:
        content_type = item.mime_type
    else:  # artifacts (heatmaps, masks): trust only what the bytes say, and only for images
        sniffed = magic.from_buffer(handle.read(2048), mime=True)
        handle.seek(0)
        content_type = sniffed if sniffed in ("image/png", "image/jpeg", "image/webp") else "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Content-Disposition"] = "attachment" if content_type == "application/octet-stream" else "inline"
    response["Cache-Control"] = "private, max-age=60"
    return response
