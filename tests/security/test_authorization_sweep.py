"""The authorization sweep: every URL pattern of the project is listed in ROUTES with who may call it, and each
route is called, method by method, as every caller who must be refused.

Callers tried against each route (the issue's list), and what they must get:

- anonymous: 401 on the API (the error shape), a redirect to the login page on the dashboard and in admin;
- another client (JWT, and a full-scope API key of its own) on a client's object: 404, never 403 — the object's
  existence is not revealed;
- a moderator on a client's object: 404 (moderators study items through the review routes, not the client API);
- a client on review and dashboard routes: 403;
- a moderator on lead-only routes: 403;
- an API key of the right user whose scopes do not include the one the method needs: 403.

A route added without a row here fails `test_every_route_is_in_the_table`: add its row (and, when it takes an
object id, an entry in OBJECTS) in the same change. Admin routes are covered as one family (`ADMIN`): every
ModelAdmin URL is generated behind `admin_view`, and the sweep checks each one refuses non-staff callers.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from hlekkr.accounts.models import Role, User
from hlekkr.accounts.services import api_key_create

pytestmark = pytest.mark.django_db

# Audiences: who may call a route.
PUBLIC = "public"  # anyone (login, token obtain/refresh, health, schema)
TOKEN = "token"  # anyone holding a signed, expiring token in the URL (downloads, multipart part PUTs)
METRICS = "metrics"  # bearer token or allowed network (docs/operations.md)
SELF = "self"  # any authenticated API caller, about themselves
OWNER = "owner"  # the client who owns the object; everyone else 404
REVIEW = "review"  # moderators, leads, admins (review API)
REVIEW_LEAD = "review_lead"  # leads and admins (review API)
DASHBOARD = "dashboard"  # moderators, leads, admins (session)
DASHBOARD_LEAD = "dashboard_lead"  # leads and admins (session)
ADMIN = "admin"  # staff (Django admin)

ALL_SCOPES = ["media:read", "media:write", "review:read", "review:write"]


@dataclass(frozen=True)
class Route:
    audience: str
    methods: tuple[str, ...]
    # The scope each method needs from an API key ("" for routes API keys cannot use at all).
    scopes: tuple[tuple[str, str], ...] = ()
    # A valid body for the write methods, so a refusal is about the caller and not about the body.
    body: Any = None

    def scope_for(self, method: str) -> str:
        return dict(self.scopes).get(method, "")


MEDIA_RW = (("GET", "media:read"), ("POST", "media:write"), ("DELETE", "media:write"))
REVIEW_RW = (("GET", "review:read"), ("POST", "review:write"))

# Every non-admin route of hlekkr/urls.py, by its full pattern. Keep it in URL order per app.
ROUTES: dict[str, Route] = {
    # ops
    "health": Route(PUBLIC, ("GET",)),
    "health/ready": Route(PUBLIC, ("GET",)),
    "metrics": Route(METRICS, ("GET",)),
    "dashboard/status/": Route(DASHBOARD_LEAD, ("GET",)),
    # accounts
    "api/v1/auth/token/": Route(PUBLIC, ("POST",)),
    "api/v1/auth/token/refresh/": Route(PUBLIC, ("POST",)),
    "api/v1/auth/token/revoke/": Route(SELF, ("POST",), (("POST", "media:read"),), {"everywhere": True}),
    "api/v1/auth/me/": Route(SELF, ("GET",), (("GET", "media:read"),)),
    # media
    "api/v1/media/": Route(SELF, ("GET", "POST"), MEDIA_RW),
    "api/v1/media/from-url/": Route(SELF, ("POST",), MEDIA_RW, {"url": "https://cdn.example.org/photo.jpg"}),
    "api/v1/media/uploads/": Route(
        SELF, ("POST",), MEDIA_RW, {"filename": "a.mp4", "size": 20 * 1024 * 1024, "content_type": "video/mp4"}
    ),
    "api/v1/media/uploads/<uuid:upload_id>/": Route(OWNER, ("GET", "DELETE"), MEDIA_RW),
    "api/v1/media/uploads/<uuid:upload_id>/complete/": Route(
        OWNER, ("POST",), MEDIA_RW, {"parts": [{"part_number": 1, "etag": "0" * 32}]}
    ),
    "api/v1/media/uploads/<uuid:upload_id>/parts/<int:part_number>/": Route(TOKEN, ("PUT",)),
    "api/v1/media/<uuid:media_id>/": Route(OWNER, ("GET", "DELETE"), MEDIA_RW),
    "api/v1/files/<str:token>/": Route(TOKEN, ("GET",)),
    # analysis
    "api/v1/media/<uuid:media_id>/analyses/": Route(OWNER, ("GET", "POST"), MEDIA_RW),
    "api/v1/analyses/<uuid:analysis_id>/": Route(OWNER, ("GET",), MEDIA_RW),
    # review API
    "api/v1/review/queue/": Route(REVIEW, ("GET",), REVIEW_RW),
    "api/v1/review/next/": Route(REVIEW, ("POST",), REVIEW_RW),
    "api/v1/review/items/<uuid:item_id>/": Route(REVIEW, ("GET",), REVIEW_RW),
    "api/v1/review/items/<uuid:item_id>/claim/": Route(REVIEW, ("POST",), REVIEW_RW),
    "api/v1/review/items/<uuid:item_id>/release/": Route(REVIEW, ("POST",), REVIEW_RW),
    "api/v1/review/items/<uuid:item_id>/decide/": Route(
        REVIEW, ("POST",), REVIEW_RW, {"verdict": "authentic", "confidence": 0.9, "notes": "looked closely"}
    ),
    "api/v1/review/items/<uuid:item_id>/escalate/": Route(REVIEW, ("POST",), REVIEW_RW, {"note": "need a lead"}),
    "api/v1/review/items/<uuid:item_id>/assign/": Route(REVIEW_LEAD, ("POST",), REVIEW_RW, {"moderator": "mod"}),
    "api/v1/review/items/<uuid:item_id>/gold/": Route(REVIEW_LEAD, ("POST",), REVIEW_RW, {"verdict": "manipulated"}),
    # batches
    "api/v1/batches/": Route(
        SELF, ("POST",), (("POST", "media:write"),), {"items": [{"url": "https://a.example/x.jpg"}]}
    ),
    "api/v1/batches/<uuid:batch_id>/": Route(OWNER, ("GET",), (("GET", "media:read"),)),
    # webhooks
    "api/v1/webhooks/": Route(
        SELF, ("GET", "POST"), MEDIA_RW, {"url": "https://hooks.example.org/x", "events": ["analysis.completed"]}
    ),
    "api/v1/webhooks/<uuid:endpoint_id>/": Route(OWNER, ("GET", "DELETE"), MEDIA_RW),
    "api/v1/webhooks/<uuid:endpoint_id>/enable/": Route(OWNER, ("POST",), MEDIA_RW),
    "api/v1/webhooks/<uuid:endpoint_id>/deliveries/": Route(OWNER, ("GET",), MEDIA_RW),
    # evidence
    "api/v1/media/<uuid:media_id>/evidence/": Route(OWNER, ("GET",), MEDIA_RW),
    # schema and docs: public by design (the contract clients code against)
    "api/schema/": Route(PUBLIC, ("GET",)),
    "api/docs/": Route(PUBLIC, ("GET",)),
    # dashboard
    "dashboard/login/": Route(PUBLIC, ("GET", "POST")),
    "dashboard/logout/": Route(PUBLIC, ("POST",)),
    "dashboard/": Route(DASHBOARD, ("GET",)),
    "dashboard/queue/rows/": Route(DASHBOARD, ("GET",)),
    "dashboard/queue/depth/": Route(DASHBOARD, ("GET",)),
    "dashboard/next/": Route(DASHBOARD, ("POST",)),
    "dashboard/mine/": Route(DASHBOARD, ("GET",)),
    "dashboard/stats/": Route(DASHBOARD, ("GET",)),
    "dashboard/lead/": Route(DASHBOARD_LEAD, ("GET",)),
    "dashboard/lead/run-assignment/": Route(DASHBOARD_LEAD, ("POST",)),
    "dashboard/items/<uuid:item_id>/": Route(DASHBOARD, ("GET",)),
    "dashboard/items/<uuid:item_id>/claim/": Route(DASHBOARD, ("POST",)),
    "dashboard/items/<uuid:item_id>/release/": Route(DASHBOARD, ("POST",)),
    "dashboard/items/<uuid:item_id>/decide/": Route(DASHBOARD, ("POST",)),
    "dashboard/items/<uuid:item_id>/escalate/": Route(DASHBOARD, ("POST",)),
    "dashboard/items/<uuid:item_id>/assign/": Route(DASHBOARD_LEAD, ("POST",)),
    "dashboard/items/<uuid:item_id>/gold/": Route(DASHBOARD_LEAD, ("POST",)),
    "dashboard/items/<uuid:item_id>/heartbeat/": Route(DASHBOARD, ("POST",)),
}

# Public admin pages (everything else under admin/ is staff-only).
ADMIN_PUBLIC = {"admin/login/", "admin/logout/"}  # logging out is harmless for anyone


def _walk(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def project_routes() -> dict[str, URLPattern]:
    return dict(_walk(get_resolver()))


def _view_methods(pattern: URLPattern) -> set[str] | None:
    """The HTTP methods a class-based view implements (None for function views: the table is the truth)."""
    view_class = getattr(pattern.callback, "view_class", None)
    if view_class is None:
        return None
    implemented = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
    return implemented - {"OPTIONS", "HEAD"}


# --- coverage ---------------------------------------------------------------------------------------------
def test_every_route_is_in_the_table() -> None:
    routes = project_routes()
    uncovered = sorted(r for r in routes if r not in ROUTES and not r.startswith("admin/"))
    assert not uncovered, f"routes without a row in ROUTES (say who may call them): {uncovered}"
    stale = sorted(r for r in ROUTES if r not in routes)
    assert not stale, f"rows in ROUTES for routes that no longer exist: {stale}"


def test_table_methods_are_the_views_methods() -> None:
    """A method added to a view (a new DELETE, say) must be added to its row, so it is swept too."""
    for route, pattern in project_routes().items():
        if route.startswith("admin/"):
            continue
        implemented = _view_methods(pattern)
        if implemented is not None and route not in ("dashboard/login/", "dashboard/logout/"):
            assert implemented == set(ROUTES[route].methods), route


# --- the cast and their objects ---------------------------------------------------------------------------
@dataclass
class Cast:
    owner: User
    other: User
    moderator: User
    lead: User
    objects: dict[str, str]  # converter name -> id of an object owned by `owner` (or any review item)
    token: str  # a valid download token for the owner's original


def _jwt(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _key(user: User, scopes: list[str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(user=user, name='sweep', scopes=scopes).plaintext}")
    return client


def _session(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def cast(settings: Any, tmp_path: Any) -> Cast:
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from analysis.models import Analysis
    from hlekkr.webhooks.models import WebhookEndpoint
    from media import services as media_services
    from media import storage
    from media.models import MediaItem
    from review.models import EscalationPolicy, ModeratorProfile, ReviewItem

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/files/"},
        },
    }
    make = User.objects.create_user
    owner = make(username="owner", password="x-secret-1", role=Role.CLIENT)
    other = make(username="other", password="x-secret-1", role=Role.CLIENT)
    moderator = make(username="mod", password="x-secret-1", role=Role.MODERATOR)
    lead = make(username="lead", password="x-secret-1", role=Role.LEAD)
    ModeratorProfile.objects.create(user=moderator, seniority="senior", expertise={"image": 4})
    ModeratorProfile.objects.create(user=lead, seniority="lead", expertise={"image": 4})
    EscalationPolicy.objects.filter(is_active=True).update(auto_assign=False)

    data = b"\x89PNG\r\n\x1a\n" + b"sweep" * 10
    media = MediaItem.objects.create(
        owner=owner,
        kind="image",
        mime_type="image/png",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original_filename="sweep.png",
        status="stored",
        analysis_status="completed",
    )
    media.storage_key = default_storage.save(f"media/{media.pk}/original", ContentFile(data))
    media.save(update_fields=["storage_key"])
    analysis = Analysis.objects.create(
        media=media, run_number=1, status="completed", manipulation_probability=0.9, trust_score=10, confidence=0.7
    )
    item = ReviewItem.objects.create(analysis=analysis, media=media, priority="high", due_at=analysis.created_at)
    ticket = media_services.multipart_upload_start(
        owner=owner, filename="big.mp4", size=20 * 1024 * 1024, content_type="video/mp4"
    )
    from batches.models import Batch, BatchItem

    batch = Batch.objects.create(owner=owner, total=1)
    BatchItem.objects.create(batch=batch, owner=owner, position=0, media=media, state="done")
    endpoint = WebhookEndpoint.objects.create(
        owner=owner, url="https://hooks.example.org/h", events=["analysis.completed"], secret="whsec-sweep"
    )
    return Cast(
        owner=owner,
        other=other,
        moderator=moderator,
        lead=lead,
        objects={
            "media_id": str(media.pk),
            "analysis_id": str(analysis.pk),
            "upload_id": str(ticket.upload.pk),
            "endpoint_id": str(endpoint.pk),
            "batch_id": str(batch.pk),
            "item_id": str(item.pk),
            "part_number": "1",
        },
        token=storage.download_url(media.storage_key).rstrip("/").rsplit("/", 1)[1],
    )


_CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


def url_of(route: str, values: dict[str, str]) -> str:
    return "/" + _CONVERTER.sub(lambda m: values[m.group("name")], route)


def _call(client: Client | APIClient, method: str, url: str, body: Any = None) -> Any:
    send: Callable[..., Any] = getattr(client, method.lower())
    if method in ("POST", "PUT", "PATCH"):
        return send(url, data=json.dumps(body or {}), content_type="application/json")
    return send(url)


def _expect(response: Any, statuses: set[int], who: str, method: str, url: str) -> None:
    assert response.status_code in statuses, (
        f"{who} {method} {url}: {response.status_code} (expected {sorted(statuses)}) "
        f"{getattr(response, 'content', b'')[:200]!r}"
    )
    if url.startswith("/api/") and response.status_code in (401, 403, 404):
        body = response.json()
        assert set(body) == {"code", "message", "details"}, body


def _login_redirect(response: Any, who: str, method: str, url: str, login: str) -> None:
    assert response.status_code == 302 and login in response["Location"], (
        f"{who} {method} {url}: {response.status_code} {response.get('Location')} (expected a redirect to {login})"
    )


# --- the sweep --------------------------------------------------------------------------------------------
API_AUDIENCES = (SELF, OWNER, REVIEW, REVIEW_LEAD)


@pytest.mark.parametrize("route", sorted(r for r, spec in ROUTES.items() if spec.audience in API_AUDIENCES))
def test_api_route_refuses_every_wrong_caller(route: str, cast: Cast) -> None:
    spec = ROUTES[route]
    url = url_of(route, cast.objects)
    client_side = spec.audience in (SELF, OWNER)
    right_user = cast.owner if client_side else (cast.lead if spec.audience == REVIEW_LEAD else cast.moderator)
    for method in spec.methods:
        call = functools.partial(_call, method=method, url=url, body=spec.body)
        _expect(call(APIClient()), {401}, "anonymous", method, url)
        needed = spec.scope_for(method)
        narrow = [s for s in ALL_SCOPES if s != needed and s.split(":")[0] != needed.split(":")[0]]
        _expect(call(_key(right_user, narrow)), {403}, f"key {narrow}", method, url)
        if needed.endswith(":write"):
            read_only = [needed.replace(":write", ":read")]
            _expect(call(_key(right_user, read_only)), {403}, f"key {read_only}", method, url)
        if spec.audience == OWNER:
            for who, client in (
                ("another client", _jwt(cast.other)),
                ("another client's key", _key(cast.other, ALL_SCOPES)),
                ("a moderator", _jwt(cast.moderator)),
                ("a lead", _jwt(cast.lead)),
            ):
                _expect(call(client), {404}, who, method, url)
        if spec.audience in (REVIEW, REVIEW_LEAD):
            _expect(call(_jwt(cast.owner)), {403}, "a client", method, url)
            _expect(call(_key(cast.owner, ALL_SCOPES)), {403}, "a client's key", method, url)
        if spec.audience == REVIEW_LEAD:
            _expect(call(_jwt(cast.moderator)), {403}, "a moderator", method, url)
    if "GET" in spec.methods:  # the right caller gets through: the URL above really reaches the object
        _expect(_call(_jwt(right_user), "GET", url), {200}, "the right caller", "GET", url)


@pytest.mark.parametrize(
    "route", sorted(r for r, spec in ROUTES.items() if spec.audience in (DASHBOARD, DASHBOARD_LEAD))
)
def test_dashboard_route_refuses_every_wrong_caller(route: str, cast: Cast) -> None:
    spec = ROUTES[route]
    url = url_of(route, cast.objects)
    for method in spec.methods:
        _login_redirect(_call(_session(None), method, url), "anonymous", method, url, "/login/")
        _expect(_call(_session(cast.owner), method, url), {403}, "a client", method, url)
        if spec.audience == DASHBOARD_LEAD:
            _expect(_call(_session(cast.moderator), method, url), {403}, "a moderator", method, url)
        # API credentials are not a dashboard session
        _login_redirect(_call(_jwt(cast.lead), method, url), "a JWT", method, url, "/login/")
    if "GET" in spec.methods:
        right = cast.lead if spec.audience == DASHBOARD_LEAD else cast.moderator
        _expect(_call(_session(right), "GET", url), {200}, "the right caller", "GET", url)


def test_token_routes_need_a_valid_token(cast: Cast) -> None:
    download = url_of("api/v1/files/<str:token>/", {"token": cast.token})
    assert _session(None).get(download).status_code == 200
    forged = cast.token[:-4] + ("AAAA" if not cast.token.endswith("AAAA") else "BBBB")
    for token in (forged, "x", uuid.uuid4().hex):
        _expect(_session(None).get(url_of("api/v1/files/<str:token>/", {"token": token})), {404}, "forged", "GET", "")
    part = url_of("api/v1/media/uploads/<uuid:upload_id>/parts/<int:part_number>/", cast.objects)
    for suffix in ("", "?token=", "?token=forged"):
        response = _jwt(cast.owner).put(part + suffix, data=b"x", content_type="application/octet-stream")
        _expect(response, {403}, "a JWT without a part token", "PUT", part)


def test_metrics_need_the_token_or_an_allowed_network(cast: Cast, settings: Any) -> None:
    settings.HLEKKR_METRICS_TOKEN = "metrics-token-for-the-sweep"
    settings.HLEKKR_METRICS_ALLOWED_NETWORKS = []
    for who, client in (("anonymous", _session(None)), ("a lead's JWT", _jwt(cast.lead)), ("admin", _admin(cast))):
        _expect(client.get("/metrics"), {401}, who, "GET", "/metrics")
    good = Client(HTTP_AUTHORIZATION="Bearer metrics-token-for-the-sweep")
    assert good.get("/metrics").status_code == 200


def _admin(cast: Cast) -> Client:
    admin = User.objects.create_superuser(username="root", password="x-secret-1", role=Role.ADMIN)
    return _session(admin)


def test_public_routes_answer_anonymous_callers() -> None:
    for route, spec in ROUTES.items():
        if spec.audience == PUBLIC and "GET" in spec.methods:
            response = _session(None).get(url_of(route, {}))
            assert response.status_code == 200, (route, response.status_code)


def _admin_url(route: str, cast: Cast) -> str:
    values = {"object_id": cast.objects["media_id"], "id": str(cast.owner.pk), "content_type_id": "1", "url": "x",
              "policy_id": "1", "evaluation_id": "1"}  # fmt: skip
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "accounts"), route)
    route = route.replace("^", "").replace("$", "")
    return url_of(route, values)


def test_every_admin_route_refuses_non_staff(cast: Cast) -> None:
    routes = sorted(r for r in project_routes() if r.startswith("admin/") and r not in ADMIN_PUBLIC)
    assert len(routes) > 50  # every registered model's pages are here
    callers = {"anonymous": _session(None), "a client": _session(cast.owner), "a lead": _session(cast.lead)}
    for route in routes:
        url = _admin_url(route, cast)
        for who, client in callers.items():
            for method in ("GET", "POST"):
                _login_redirect(_call(client, method, url), who, method, url, "/admin/login/")
