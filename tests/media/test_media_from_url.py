"""POST /api/v1/media/from-url/: a client hands us a link; a worker fetches it under the webhook SSRF rules.

Every server here is a loopback server listed in HLEKKR_FETCH_ALLOWED_HOSTS (tests/fetch_server.py)."""

from __future__ import annotations

import glob
import tempfile
from typing import Any

import pytest
from fetch_server import FetchServer
from media_factories import jpeg_bytes, stored_files, wav_bytes

from hlekkr import events
from hlekkr.audit.models import AuditEvent
from media.models import FetchState, MediaItem, MediaStatus, UrlFetch
from tests.conftest import domain_callbacks

FROM_URL = "/api/v1/media/from-url/"


@pytest.fixture
def fetched_events() -> Any:
    received: list[dict[str, Any]] = []

    def handler(event: str, payload: dict[str, Any]) -> None:
        received.append(payload)

    events.subscribe(events.MEDIA_FETCH_FINISHED, handler, after_commit=True)
    yield received
    events.unsubscribe(events.MEDIA_FETCH_FINISHED, handler)


def post_url(api_as: Any, user: Any, url: str, capture: Any, **extra: Any) -> Any:
    """POST the URL and let the after-commit fetch task run (eagerly, as the worker would)."""
    with capture(execute=True):
        return api_as(user).post(FROM_URL, {"url": url, **extra}, format="json")


def detail(api_as: Any, user: Any, media_id: str) -> Any:
    return api_as(user).get(f"/api/v1/media/{media_id}/")


@pytest.fixture(autouse=True)
def _own_temp_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch spools to the temp dir; a private one per test, so the check below sees only this test's files."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))


def no_spool_left() -> bool:
    return not glob.glob(f"{tempfile.gettempdir()}/hlekkr-fetch-*.part")


# --- what works ---------------------------------------------------------------------------------------------
def test_a_direct_image_url_is_fetched_stored_and_queued_for_analysis(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, stored_events: Any
) -> None:
    url = fetch_server.serve("/photo.jpg", jpeg_bytes(5))

    response = post_url(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "fetching"
    assert response["Location"].endswith(f"/api/v1/media/{response.json()['id']}/")
    body = detail(api_as, client_a, response.json()["id"]).json()
    assert body["status"] == "stored" and body["kind"] == "image" and body["mime_type"] == "image/jpeg"
    assert body["original_filename"] == "photo.jpg"
    assert body["source"]["url"] == url and body["source"]["final_url"] == url
    assert body["source"]["state"] == "stored" and body["source"]["other_host"] is False
    assert stored_events == [{"media_id": body["id"], "owner_id": client_a.id, "kind": "image", "queue": "interactive"}]
    assert AuditEvent.objects.filter(action="media.fetched", object_id=body["id"]).exists()
    assert no_spool_left()


def test_a_page_is_followed_to_its_og_image(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    fetch_server.serve("/lead.jpg", jpeg_bytes(6))
    page = (
        b'<html><head><meta property="og:image" content="/lead.jpg"></head>'
        b'<body><main><img src="/other.jpg"></main></body></html>'
    )
    url = fetch_server.serve("/story.html", page, content_type="text/html; charset=utf-8")

    response = post_url(api_as, client_a, url, django_capture_on_commit_callbacks)

    body = detail(api_as, client_a, response.json()["id"]).json()
    assert body["status"] == "stored"
    assert body["source"]["page_url"] == url
    assert body["source"]["final_url"] == fetch_server.url("/lead.jpg")
    assert "/other.jpg" not in fetch_server.requests


def test_a_page_without_og_tags_gives_its_main_video(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    fetch_server.serve("/news/clip.wav", wav_bytes(), content_type="audio/wav")
    page = (
        b'<html><body><img src="/logo.png" width="1" height="1"><article><video controls>'
        b'<source src="clip.wav" type="audio/wav"></video></article></body></html>'
    )
    url = fetch_server.serve("/news/item.html", page, content_type="text/html")

    response = post_url(api_as, client_a, url, django_capture_on_commit_callbacks)

    body = detail(api_as, client_a, response.json()["id"]).json()
    assert body["status"] == "stored" and body["kind"] == "audio"
    assert body["source"]["final_url"] == fetch_server.url("/news/clip.wav")


def test_redirects_are_followed_and_recorded(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    target = fetch_server.serve("/img/final.jpg", jpeg_bytes(7))
    fetch_server.redirect("/b", target)
    start = fetch_server.redirect("/a", fetch_server.url("/b"))

    response = post_url(api_as, client_a, start, django_capture_on_commit_callbacks)

    source = detail(api_as, client_a, response.json()["id"]).json()["source"]
    assert source["hops"] == [start, fetch_server.url("/b"), target]
    assert source["redirects"] == 2 and source["final_url"] == target


def test_a_redirect_to_another_host_is_flagged(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    other = FetchServer()
    import threading

    threading.Thread(target=other.httpd.serve_forever, daemon=True).start()
    try:
        settings.HLEKKR_FETCH_ALLOWED_HOSTS = f"{fetch_server.host},{other.host}"
        target = other.serve("/elsewhere.jpg", jpeg_bytes(8))
        start = fetch_server.redirect("/go", target)

        response = post_url(api_as, client_a, start, django_capture_on_commit_callbacks)

        source = detail(api_as, client_a, response.json()["id"]).json()["source"]
        assert source["other_host"] is True and source["final_url"] == target
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()


def test_bytes_the_client_already_has_resolve_to_that_item_with_a_303(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, upload: Any
) -> None:
    data = jpeg_bytes(9)
    first = upload(client_a, "mine.jpg", data).json()
    url = fetch_server.serve("/copy.jpg", data)

    response = post_url(api_as, client_a, url, django_capture_on_commit_callbacks)

    placeholder = response.json()["id"]
    answer = detail(api_as, client_a, placeholder)
    assert answer.status_code == 303
    assert answer["Location"].endswith(f"/api/v1/media/{first['id']}/")
    assert answer.json()["code"] == "duplicate_of"
    existing = detail(api_as, client_a, first["id"]).json()
    assert existing["source"] is None
    assert [s["url"] for s in existing["also_fetched_from"]] == [url]
    assert UrlFetch.objects.get(media_id=placeholder).state == FetchState.DUPLICATE
    assert len(stored_files()) == 1  # the first upload's object; the fetched copy was never stored


def test_another_client_cannot_see_a_fetched_item(
    api_as: Any, client_a: Any, client_b: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = fetch_server.serve("/photo.jpg", jpeg_bytes(10))
    media_id = post_url(api_as, client_a, url, django_capture_on_commit_callbacks).json()["id"]

    assert detail(api_as, client_b, media_id).status_code == 404


def test_the_fetch_runs_in_the_worker_not_the_request(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = fetch_server.serve("/photo.jpg", jpeg_bytes(11))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_as(client_a).post(FROM_URL, {"url": url}, format="json")

    assert response.status_code == 202 and fetch_server.requests == []
    assert len(domain_callbacks(callbacks)) == 1
    assert MediaItem.objects.get(pk=response.json()["id"]).status == MediaStatus.FETCHING


# --- refused in the request: 400 with a specific code, nothing stored -----------------------------------------
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "url_scheme_not_allowed"),
        ("ftp://127.0.0.1/x.jpg", "url_scheme_not_allowed"),
        ("not a url", "url_invalid"),
        ("http://user:pw@cdn.example/x.jpg", "url_invalid"),
        ("http://127.0.0.1:1/x.jpg", "url_destination_refused"),
        ("http://10.0.0.8/x.jpg", "url_destination_refused"),
        ("http://169.254.169.254/latest/meta-data/", "url_destination_refused"),
        ("http://[::ffff:127.0.0.1]:2/x.jpg", "url_destination_refused"),
        ("http://nowhere.invalid/x.jpg", "url_unresolvable"),
    ],
)
def test_bad_urls_are_refused_in_the_request_with_their_code(
    api_as: Any, client_a: Any, fetch_server: FetchServer, url: str, code: str
) -> None:
    response = api_as(client_a).post(FROM_URL, {"url": url}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert MediaItem.objects.count() == 0 and stored_files() == []
    assert AuditEvent.objects.filter(action="media.upload_rejected").count() == 1


def test_a_listed_host_never_exempts_the_metadata_address(settings: Any) -> None:
    from media.fetch import FetchRefused, check_source_url

    settings.HLEKKR_FETCH_ALLOWED_HOSTS = "169.254.169.254:80"
    with pytest.raises(FetchRefused) as refused:
        check_source_url("http://169.254.169.254/latest/meta-data/")
    assert refused.value.code == "url_destination_refused"


def test_missing_and_unknown_fields_are_400(api_as: Any, client_a: Any) -> None:
    assert api_as(client_a).post(FROM_URL, {}, format="json").status_code == 400
    response = api_as(client_a).post(FROM_URL, {"url": "http://x.example/a.jpg", "follow": 9}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_anonymous_callers_are_refused(client: Any) -> None:
    assert client.post(FROM_URL, {"url": "http://x.example/a.jpg"}).status_code == 401


# --- refused by the worker: the item is `rejected` with the code, nothing half-fetched anywhere -------------------
def _refused(api_as: Any, client_a: Any, url: str, capture: Any) -> dict[str, Any]:
    response = post_url(api_as, client_a, url, capture)
    assert response.status_code == 202, response.content
    body: dict[str, Any] = detail(api_as, client_a, response.json()["id"]).json()
    assert body["status"] == "rejected"
    assert stored_files() == [] and no_spool_left()
    return body


def test_a_page_without_media_is_refused(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, fetched_events: Any
) -> None:
    url = fetch_server.serve("/nomedia.html", b"<html><body><p>Words only.</p></body></html>", "text/html")

    body = _refused(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "page_without_media"
    assert fetched_events[0]["state"] == "failed" and fetched_events[0]["error_code"] == "page_without_media"


def test_html_served_as_jpeg_is_refused_by_the_upload_checks(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = fetch_server.serve("/fake.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg")

    body = _refused(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "unsupported_media_type"


def test_a_non_media_type_is_refused_unread(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    url = fetch_server.serve("/data.json", b'{"a": 1}', "application/json")

    body = _refused(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "fetch_unsupported_type"


def test_too_many_redirects_are_refused(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    for hop in range(7):
        fetch_server.redirect(f"/r{hop}", fetch_server.url(f"/r{hop + 1}"))
    fetch_server.serve("/r7", jpeg_bytes(12))

    body = _refused(api_as, client_a, fetch_server.url("/r0"), django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "fetch_too_many_redirects"
    assert fetch_server.requests == [f"/r{hop}" for hop in range(6)]  # 5 redirects followed, the 6th refused


def test_a_redirect_into_a_refused_address_is_refused_before_connecting(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    start = fetch_server.redirect("/sneaky", "http://127.0.0.1:9/admin.jpg")

    body = _refused(api_as, client_a, start, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "url_destination_refused"


@pytest.mark.parametrize("announce", [True, False])
def test_media_over_the_direct_upload_limit_is_refused(
    api_as: Any,
    client_a: Any,
    fetch_server: FetchServer,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    announce: bool,
) -> None:
    settings.HLEKKR_MAX_DIRECT_UPLOAD_BYTES = 20_000
    url = fetch_server.serve("/big.jpg", jpeg_bytes(13, size=(640, 480)), send_length=announce)

    body = _refused(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "fetch_too_large"


def test_a_slow_server_is_cut_off_at_the_total_deadline(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.HLEKKR_FETCH_TOTAL_TIMEOUT = 0.6
    url = fetch_server.serve("/slow.jpg", jpeg_bytes(14), delay_per_chunk=0.2)

    body = _refused(api_as, client_a, url, django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "fetch_timeout"


def test_an_http_error_is_refused_with_its_status(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    body = _refused(api_as, client_a, fetch_server.url("/missing.jpg"), django_capture_on_commit_callbacks)

    assert body["source"]["error"]["code"] == "fetch_http_error"


# --- the worker side is idempotent ----------------------------------------------------------------------------
def test_running_a_finished_fetch_again_does_nothing(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    from media.services import url_fetch_run

    url = fetch_server.serve("/photo.jpg", jpeg_bytes(15))
    media_id = post_url(api_as, client_a, url, django_capture_on_commit_callbacks).json()["id"]
    job = UrlFetch.objects.get(media_id=media_id)

    assert url_fetch_run(fetch_id=job.pk) is None
    assert fetch_server.requests == ["/photo.jpg"]


def test_the_reconciler_resends_a_fetch_whose_message_was_lost(
    api_as: Any, client_a: Any, fetch_server: FetchServer, django_capture_on_commit_callbacks: Any
) -> None:
    from media.services import url_fetches_reconcile

    url = fetch_server.serve("/photo.jpg", jpeg_bytes(16))
    with django_capture_on_commit_callbacks(execute=False):
        media_id = api_as(client_a).post(FROM_URL, {"url": url}, format="json").json()["id"]
    UrlFetch.objects.filter(media_id=media_id).update(enqueued_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        assert url_fetches_reconcile() == {"resent": 1}

    assert MediaItem.objects.get(pk=media_id).status == MediaStatus.STORED
