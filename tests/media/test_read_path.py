"""What a read costs, pinned: queries and cache calls per endpoint, and that the shortcuts keep every rule
(ownership, deletion, a new outcome) exactly as the database path does."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import cache

from hlekkr.accounts.models import User
from hlekkr.accounts.services import api_key_create
from media import detail_cache
from media.api.serializers import MediaListRow
from media.models import MediaItem
from media.selectors import LIST_ROW_FIELDS, media_list_row
from media.services import media_item_delete, media_item_record_outcome
from tests.media.media_factories import jpeg_bytes


@pytest.fixture
def item_a(client_a: User, upload: Any) -> dict[str, Any]:
    response = upload(client_a, "a.jpg", jpeg_bytes(101), "image/jpeg")
    assert response.status_code == 201
    return dict(response.json())


def _url(item: dict[str, Any], details: bool = False) -> str:
    return f"/api/v1/media/{item['id']}/" + ("?include_details=true" if details else "")


class CacheCalls:
    """Counts calls to the Django cache API by method while a block runs (outermost calls only: local memory
    answers get_many with one get per key)."""

    METHODS = ("get", "get_many", "set", "add", "incr", "decr", "delete", "delete_many", "set_many")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.counting = False
        self.depth = 0
        backend = type(cache._connections[cache._alias])  # type: ignore[attr-defined]
        for name in self.METHODS:
            original = getattr(backend, name)

            def wrapped(self_: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                if self.counting and self.depth == 0:
                    self.calls.append(_name)
                self.depth += 1
                try:
                    return _original(self_, *args, **kwargs)
                finally:
                    self.depth -= 1

            monkeypatch.setattr(backend, name, wrapped)

    def __enter__(self) -> CacheCalls:
        self.calls, self.counting = [], True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.counting = False


@pytest.fixture
def cache_calls(monkeypatch: pytest.MonkeyPatch) -> CacheCalls:
    return CacheCalls(monkeypatch)


@pytest.fixture
def drf_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that became DRF requests (APIView.initialize_request), in order."""
    from rest_framework.views import APIView

    paths: list[str] = []
    original = APIView.initialize_request

    def initialize_request(self: APIView, request: Any, *args: Any, **kwargs: Any) -> Any:
        paths.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "initialize_request", initialize_request)
    return paths


# --- queries ----------------------------------------------------------------------------------------------
def test_a_cached_detail_read_makes_no_query(
    client_a: User, api_as: Any, item_a: dict[str, Any], django_assert_num_queries: Any
) -> None:
    api = api_as(client_a)
    for details in (False, True):
        assert api.get(_url(item_a, details)).status_code == 200  # renders and remembers
        with django_assert_num_queries(0):
            assert api.get(_url(item_a, details)).status_code == 200


def test_a_cached_detail_read_with_an_api_key_makes_no_query(
    client_a: User, api: Any, item_a: dict[str, Any], django_assert_num_queries: Any
) -> None:
    issued = api_key_create(user=client_a, name="ci", scopes=["media:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    api.get(_url(item_a))  # loads the key (and writes last_used_at once a minute) and the body
    api.get(_url(item_a))
    with django_assert_num_queries(0):
        assert api.get(_url(item_a)).status_code == 200


def test_an_uncached_detail_read_is_two_queries_once_the_caller_is_known(
    client_a: User, api_as: Any, item_a: dict[str, Any], django_assert_num_queries: Any
) -> None:
    api = api_as(client_a)
    api.get("/api/v1/auth/me/")
    cache.clear()
    with django_assert_num_queries(2):  # the item, owner-scoped; the URLs it was fetched from
        assert api.get(_url(item_a)).status_code == 200


@pytest.mark.parametrize("count", [1, 25, 100])
def test_a_list_page_is_one_query_whatever_its_size(
    client_a: User, api_as: Any, django_assert_num_queries: Any, count: int
) -> None:
    MediaItem.objects.bulk_create(
        MediaItem(owner=client_a, kind="image", mime_type="image/jpeg", size=10, sha256=f"{i:064x}", status="stored")
        for i in range(count)
    )
    api = api_as(client_a)
    api.get("/api/v1/auth/me/")
    with django_assert_num_queries(1):
        response = api.get(f"/api/v1/media/?page_size={count}")
    assert len(response.json()["results"]) == count


def test_list_rows_are_what_the_documented_serializer_says(client_a: User, item_a: dict[str, Any]) -> None:
    item = MediaItem.objects.get(pk=item_a["id"])
    row = media_list_row(MediaItem.objects.filter(pk=item.pk).values(*LIST_ROW_FIELDS).get())
    assert row == dict(MediaListRow(item).data)
    assert list(row) == list(MediaListRow().fields)


# --- cache calls ------------------------------------------------------------------------------------------
def test_a_cached_detail_read_is_one_cache_read_besides_the_limiter(
    client_a: User, api_as: Any, item_a: dict[str, Any], cache_calls: CacheCalls
) -> None:
    api = api_as(client_a)
    api.get(_url(item_a))
    with cache_calls:
        assert api.get(_url(item_a)).status_code == 200
    # get_many: the body and its generation together; add/incr: django-ratelimit counting the read window
    # (on Redis those two are one round trip: tests/ratelimit/test_redis.py pins that).
    assert sorted(cache_calls.calls) == ["add", "get_many", "incr"]


def test_a_list_read_touches_the_cache_only_for_the_limiter(
    client_a: User, api_as: Any, item_a: dict[str, Any], cache_calls: CacheCalls
) -> None:
    api = api_as(client_a)
    api.get("/api/v1/media/")
    with cache_calls:
        assert api.get("/api/v1/media/").status_code == 200
    assert sorted(cache_calls.calls) == ["add", "incr"]


# --- the rules still hold ---------------------------------------------------------------------------------
def test_another_owner_never_gets_a_cached_body(
    client_a: User, client_b: User, api_as: Any, item_a: dict[str, Any]
) -> None:
    assert api_as(client_a).get(_url(item_a)).status_code == 200  # cached for a
    response = api_as(client_b).get(_url(item_a))
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_deleted_item_is_404_at_once_though_its_body_was_cached(
    client_a: User, api_as: Any, item_a: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    api = api_as(client_a)
    assert api.get(_url(item_a)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        media_item_delete(owner=client_a, media_id=item_a["id"])
    assert api.get(_url(item_a)).status_code == 404


def test_a_new_outcome_is_served_at_once(client_a: User, api_as: Any, item_a: dict[str, Any]) -> None:
    api = api_as(client_a)
    before = api.get(_url(item_a))
    media_item_record_outcome(
        media_id=item_a["id"], analysis_status="completed", trust_score=83, verdict="likely_authentic"
    )
    after = api.get(_url(item_a))
    assert after.json()["trust_score"] == 83 and after["ETag"] != before["ETag"]


def test_a_body_stored_from_a_row_read_before_a_write_is_never_served(client_a: User, item_a: dict[str, Any]) -> None:
    # A reader misses and reads the generation, then a write commits and bumps it, then the reader stores the
    # body it rendered from the old row: that entry carries the old generation and no read accepts it.
    _, gen = detail_cache.lookup(item_a["id"], owner_id=client_a.pk, include_details=False)
    detail_cache.store(item_a["id"], gen=gen, owner_id=client_a.pk, include_details=False, etag='"x"', body={})
    assert detail_cache.lookup(item_a["id"], owner_id=client_a.pk, include_details=False)[0] is not None
    _, gen = detail_cache.lookup(item_a["id"], owner_id=client_a.pk, include_details=False)
    detail_cache.item_changed(item_a["id"])
    detail_cache.store(item_a["id"], gen=gen, owner_id=client_a.pk, include_details=False, etag='"old"', body={})
    assert detail_cache.lookup(item_a["id"], owner_id=client_a.pk, include_details=False)[0] is None


@pytest.mark.parametrize(
    "write",
    [
        lambda pk: MediaItem.objects.filter(pk=pk).update(trust_score=11),
        lambda pk: MediaItem.objects.filter(pk__in=[pk], status="stored").update(trust_score=11),
        lambda pk: MediaItem.objects.filter(status="stored").update(trust_score=11),  # rows not named: all retired
        lambda pk: MediaItem.objects.bulk_update([MediaItem(pk=pk, trust_score=11)], ["trust_score"]),
        lambda pk: _save(pk, trust_score=11),
    ],
    ids=["update-by-pk", "update-by-pk-in", "update-by-filter", "bulk_update", "save"],
)
def test_any_orm_write_to_an_item_retires_its_cached_body(
    client_a: User, api_as: Any, item_a: dict[str, Any], write: Any
) -> None:
    api = api_as(client_a)
    assert api.get(_url(item_a)).json()["trust_score"] is None  # cached now
    write(item_a["id"])
    assert api.get(_url(item_a)).json()["trust_score"] == 11


def _save(pk: Any, **fields: Any) -> None:
    item = MediaItem.objects.get(pk=pk)
    for name, value in fields.items():
        setattr(item, name, value)
    item.save()


def test_the_cache_being_down_costs_a_database_read_not_the_request(
    client_a: User, api_as: Any, item_a: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    backend = type(cache._connections[cache._alias])  # type: ignore[attr-defined]
    monkeypatch.setattr(backend, "get_many", down)
    monkeypatch.setattr(backend, "set", down)
    response = api_as(client_a).get(_url(item_a))
    assert response.status_code == 200 and response.json()["id"] == item_a["id"]


@pytest.mark.redis
@pytest.mark.xdist_group("redis")
def test_on_redis_a_cached_detail_read_is_one_round_trip(
    client_a: User, api_as: Any, item_a: dict[str, Any], settings: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from ratelimit import monitor
    from ratelimit.policies import policy_cache

    # Its own key prefix and no FLUSHDB: Redis tests on the other xdist worker share this database.
    prefix = f"test-read-path-{time.time_ns()}"
    local = settings.CACHES
    settings.CACHES = {
        "default": {"BACKEND": "ratelimit.cache.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}
    }
    settings.HLEKKR_RATELIMIT_POLICY_TTL = 60
    policy_cache.invalidate()
    try:
        api = api_as(client_a)
        api.get(_url(item_a))
        sent: list[str] = []
        # On the connection, where redis-py's commands and the limiter's direct EVALSHA (ratelimit/cache.py) pass,
        # packed: the command's name is the first bulk string of the RESP array.
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(self_: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            packed = b"".join(command)  # a list of chunks
            sent.append(packed.split(b"\r\n")[2].decode())
            return original(self_, command, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        monitor._local.last_push = time.monotonic() + 60  # the monitor pushes once a second, not per request
        assert api.get(_url(item_a)).status_code == 200
        during = list(sent)
    finally:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        settings.CACHES = local  # so the media fixtures' cache.clear() at teardown empties local memory
    assert during == ["EVALSHA"]  # the limiter's one Lua call, which also reads the body and its generation


def test_without_a_shared_cache_every_read_sees_the_database(
    settings: Any, api_as: Any, client_a: User, upload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded run: another process (the worker) changes the item and bumps only its own memory cache."""
    settings.HLEKKR_DETAIL_CACHE_SHARED = False
    item_id = upload(client_a, "a.jpg", jpeg_bytes(131), "image/jpeg").json()["id"]
    assert api_as(client_a).get(f"/api/v1/media/{item_id}/").json()["analysis_status"] == ""
    with monkeypatch.context() as patch:
        patch.setattr(detail_cache, "item_changed", lambda item_id: None)  # the bump lands in another process
        MediaItem.objects.filter(pk=item_id).update(analysis_status="completed", trust_score=81)

    body = api_as(client_a).get(f"/api/v1/media/{item_id}/").json()

    assert (body["analysis_status"], body["trust_score"]) == ("completed", 81)


# --- the cached detail answered before DRF ----------------------------------------------------------------
_PER_RESPONSE = {"X-Request-ID", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Content-Length"}


def _headers(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in _PER_RESPONSE}


def _body_without_url(response: Any) -> dict[str, Any]:
    body = dict(response.json())
    assert body.pop("download_url").startswith("http://testserver/")
    return body


@pytest.mark.parametrize("details", [False, True])
def test_a_cached_hit_answers_what_drf_answers_on_a_miss(
    client_a: User, api_as: Any, item_a: dict[str, Any], details: bool, drf_requests: list[str]
) -> None:
    wrapped = drf_requests
    api = api_as(client_a)
    miss = api.get(_url(item_a, details))  # rendered by DRF, then cached
    hit = api.get(_url(item_a, details))
    assert len(wrapped) == 1  # the hit never became a DRF request
    assert hit.status_code == miss.status_code == 200
    assert _headers(hit) == _headers(miss)
    assert hit["Content-Type"] == "application/json" and hit["ETag"] and hit["Cache-Control"] == "private, no-cache"
    assert list(hit.json()) == list(miss.json())  # the same keys in the same order
    assert _body_without_url(hit) == _body_without_url(miss)


def test_a_cached_hit_answers_304_as_drf_does(client_a: User, api_as: Any, item_a: dict[str, Any]) -> None:
    api = api_as(client_a)
    etag = api.get(_url(item_a))["ETag"]
    cache.clear()
    miss = api.get(_url(item_a), HTTP_IF_NONE_MATCH=etag)  # DRF, from the database
    hit = api.get(_url(item_a), HTTP_IF_NONE_MATCH=f'"other", {etag}')
    assert hit.status_code == miss.status_code == 304
    assert _headers(hit) == _headers(miss) and "Content-Type" not in hit and hit.content == b""


@pytest.fixture
def read_limit_3_a_minute() -> Any:
    from ratelimit.models import RateLimitPolicy
    from ratelimit.policies import policy_cache

    RateLimitPolicy.objects.filter(group="read").update(rate="3/m", role_multipliers={})
    policy_cache.invalidate()
    yield
    policy_cache.invalidate()


def test_a_cached_hit_counts_once_against_the_read_limit_and_is_refused_in_the_error_shape(
    client_a: User, api_as: Any, item_a: dict[str, Any], read_limit_3_a_minute: None
) -> None:
    api = api_as(client_a)
    responses = [api.get(_url(item_a)) for _ in range(4)]  # a miss, then hits
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    refused = responses[-1].json()
    assert refused["code"] == "rate_limited" and refused["details"]["group"] == "read"
    assert responses[-1]["Retry-After"].isdigit()


def test_a_cached_body_needs_a_valid_credential(client_a: User, api: Any, api_as: Any, item_a: dict[str, Any]) -> None:
    assert api_as(client_a).get(_url(item_a)).status_code == 200  # cached
    assert api.get(_url(item_a)).json()["code"] == "not_authenticated"
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = api.get(_url(item_a))
    assert response.status_code == 401 and response.json()["code"] == "token_not_valid"


def test_a_cached_body_needs_the_read_scope_with_an_api_key(
    client_a: User, api: Any, api_as: Any, item_a: dict[str, Any]
) -> None:
    assert api_as(client_a).get(_url(item_a)).status_code == 200  # cached
    issued = api_key_create(user=client_a, name="writer", scopes=["media:write"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    response = api.get(_url(item_a))
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_a_deactivated_user_stops_reading_cached_bodies_within_the_cache_seconds(
    client_a: User, api_as: Any, item_a: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hlekkr.accounts import auth_cache

    settings.HLEKKR_AUTH_CACHE_SECONDS = 5
    now = [1000.0]
    monkeypatch.setattr(auth_cache.users, "clock", lambda: now[0])
    auth_cache.clear()  # the upload remembered the user on the real clock
    api = api_as(client_a)
    assert api.get(_url(item_a)).status_code == 200
    User.objects.filter(pk=client_a.pk).update(is_active=False)  # elsewhere: no service call in this process
    assert api.get(_url(item_a)).status_code == 200  # within the documented window
    now[0] += 5.1
    assert api.get(_url(item_a)).status_code == 401


@pytest.mark.parametrize(
    ("accept", "status", "indented"),
    [("text/html", 406, False), ("application/json; indent=2", 200, True), ("application/json", 200, False)],
)
def test_other_accept_headers_are_negotiated_by_drf(
    client_a: User, api_as: Any, item_a: dict[str, Any], accept: str, status: int, indented: bool
) -> None:
    api = api_as(client_a)
    api.get(_url(item_a))  # cached
    response = api.get(_url(item_a), HTTP_ACCEPT=accept)
    assert response.status_code == status
    assert response.content.startswith(b'{\n  "') is indented


def test_other_queries_are_validated_by_drf(client_a: User, api_as: Any, item_a: dict[str, Any]) -> None:
    api = api_as(client_a)
    api.get(_url(item_a))
    response = api.get(_url(item_a) + "?include_details=maybe")
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


# --- the list's first page from SQL compiled once -----------------------------------------------------------
def _make_items(owner: User, count: int, *, start: int = 0, **fields: Any) -> None:
    MediaItem.objects.bulk_create(
        MediaItem(
            owner=owner, kind="image", mime_type="image/jpeg", size=10, sha256=f"{i:064x}", status="stored", **fields
        )
        for i in range(start, start + count)
    )


def test_the_first_page_is_what_the_orm_pages_give_and_its_next_link_continues_it(
    client_a: User, client_b: User, api_as: Any, django_assert_num_queries: Any
) -> None:
    from django.utils import timezone

    _make_items(client_a, 30)
    _make_items(client_b, 3, start=100)
    MediaItem.objects.filter(owner=client_a).update(created_at=timezone.now())  # all tied: the offset cursor
    gone = MediaItem.objects.filter(owner=client_a).first()
    assert gone is not None
    MediaItem.objects.filter(pk=gone.pk).update(status="deleted")
    api = api_as(client_a)
    api.get("/api/v1/auth/me/")
    with django_assert_num_queries(1):
        first = api.get("/api/v1/media/").json()
    through_orm = api.get("/api/v1/media/?page_size=25").json()
    assert first["results"] == through_orm["results"] and first["previous"] is None
    rest = api.get(first["next"]).json()
    seen = [row["id"] for row in first["results"] + rest["results"]]
    expected = {
        str(pk)
        for pk in MediaItem.objects.filter(owner=client_a).exclude(status="deleted").values_list("pk", flat=True)
    }
    assert len(seen) == len(set(seen)) == 29 and set(seen) == expected and rest["next"] is None


def test_the_first_page_writes_timestamps_and_its_cursor_as_the_orm_page_does(
    client_a: User, api_as: Any, django_assert_num_queries: Any
) -> None:
    """On PostgreSQL the first page reads created_at as text (media.selectors._utc_text_as_str): every shape of
    fractional seconds must come out as the ORM's datetimes do, in the rows and in the next cursor."""
    from datetime import UTC, datetime
    from urllib.parse import parse_qs, urlsplit

    _make_items(client_a, 27)
    stamps = [datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=UTC) for micro in (0, 120000, 123456, 5, 100, 999999)]
    for n, pk in enumerate(MediaItem.objects.filter(owner=client_a).order_by("pk").values_list("pk", flat=True)):
        MediaItem.objects.filter(pk=pk).update(created_at=stamps[n % len(stamps)].replace(day=1 + n))
    api = api_as(client_a)
    api.get("/api/v1/auth/me/")
    with django_assert_num_queries(1):
        first = api.get("/api/v1/media/").json()
    through_orm = api.get("/api/v1/media/?page_size=25").json()
    assert first["results"] == through_orm["results"]
    assert {row["created_at"][19:] for row in first["results"]} >= {"Z", ".120000Z", ".123456Z", ".000005Z"}

    def cursor(url: str) -> list[str]:
        return parse_qs(urlsplit(url).query)["cursor"]

    assert cursor(first["next"]) == cursor(through_orm["next"])


def test_postgresql_timestamp_text_becomes_the_datetimes_str() -> None:
    from media.selectors import _utc_text_as_str

    assert _utc_text_as_str("2026-01-02 03:04:05+00") == "2026-01-02 03:04:05+00:00"
    assert _utc_text_as_str("2026-01-02 03:04:05.12+00") == "2026-01-02 03:04:05.120000+00:00"
    assert _utc_text_as_str("2026-01-02 03:04:05.000001+00") == "2026-01-02 03:04:05.000001+00:00"
    for other in ("2026-01-02 03:04:05+01", "12026-01-02 03:04:05+00", "0001-01-02 03:04:05+00 BC", "infinity"):
        assert _utc_text_as_str(other) is None
    assert _utc_text_as_str(b"2026-01-02 03:04:05+00") is None


def test_the_first_page_is_answered_before_drf_with_what_drf_answers(
    client_a: User,
    api_as: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Any,
    drf_requests: list[str],
) -> None:
    wrapped = drf_requests
    from media.api.views import MediaCollectionView

    _make_items(client_a, 27)
    api = api_as(client_a)
    api.get("/api/v1/auth/me/")
    wrapped.clear()
    with django_assert_num_queries(1):
        fast = api.get("/api/v1/media/")
    assert wrapped == []  # never became a DRF request
    with monkeypatch.context() as m:
        m.setattr(MediaCollectionView, "_first_page", lambda self, request: None)
        through_drf = api.get("/api/v1/media/")
    assert wrapped == ["/api/v1/media/"]
    assert fast.status_code == through_drf.status_code == 200
    assert _headers(fast) == _headers(through_drf) and fast["Content-Type"] == "application/json"
    assert fast.content == through_drf.content and fast.json()["next"]


def test_the_first_page_before_drf_counts_once_and_is_refused_in_the_error_shape(
    client_a: User, api_as: Any, read_limit_3_a_minute: None
) -> None:
    api = api_as(client_a)
    responses = [api.get("/api/v1/media/") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    refused = responses[-1].json()
    assert refused["code"] == "rate_limited" and refused["details"]["group"] == "read"
    assert responses[-1]["Retry-After"].isdigit()


def test_the_first_page_needs_a_valid_credential_and_the_read_scope(client_a: User, api: Any, api_as: Any) -> None:
    from hlekkr.accounts.services import api_key_create

    assert api.get("/api/v1/media/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api.get("/api/v1/media/").json()["code"] in ("token_not_valid", "authentication_failed")
    writer = api_key_create(user=client_a, name="w", scopes=["media:write"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {writer.plaintext}")
    refused = api.get("/api/v1/media/")
    assert refused.status_code == 403 and set(refused.json()) == {"code", "message", "details"}


def test_a_database_outage_on_the_first_page_is_drfs_503(
    client_a: User, api_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from media import selectors

    def down(*, owner: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "media_items_first_page", down)
    response = api_as(client_a).get("/api/v1/media/")
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


def test_the_first_page_sql_is_compiled_once_per_page_size(client_a: User, client_b: User, api_as: Any) -> None:
    from django.db import connection

    from media import selectors

    selectors._first_page_sql_cache.clear()
    _make_items(client_a, 2)
    _make_items(client_b, 1, start=50)
    assert len(api_as(client_a).get("/api/v1/media/").json()["results"]) == 2
    assert len(api_as(client_b).get("/api/v1/media/").json()["results"]) == 1
    assert list(selectors._first_page_sql_cache) == [26]
    compiled = selectors._first_page_sql_cache[26]
    if connection.vendor == "postgresql":
        assert compiled is not None and compiled[2] == [0]  # the owner id, and nothing else, varies
    else:  # SQLite: Django converts its UUID, datetime and boolean columns, so the ORM answers (rightly, above)
        assert compiled is None
