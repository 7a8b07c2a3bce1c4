"""The hostile corpus against a real gunicorn on loopback, over raw keep-alive connections (http.client).

Every upload gets an answer (never a 5xx, never a connection closed without a response), and the request after
it on the same connection is answered too. Before hlekkr.unread_body, a direct upload refused with 400
`malformed_request` for an over-long part header (a 300-character percent-encoded filename) left the rest of
the body unread; gunicorn drained 64 KiB of it, gave up and closed the connection after a response that had
said `keep-alive`, so the next request failed with RemoteDisconnected (2 of 4 runs of a 27-file sequence).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from corpus import CORPUS, photo_jpeg
from live_server import live_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("live_keepalive")]


@dataclass
class Live:
    port: int
    token: str

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(tmp_path_factory.mktemp("live-var")) as server:
        yield Live(server.port, server.token("client"))


BOUNDARY = "hlekkr-hostile-boundary"


def form(filename: str, data: bytes, content_type: str, *, star: bool = False) -> bytes:
    disposition = (
        f"form-data; name=\"file\"; filename*=UTF-8''{urllib.parse.quote(filename)}"
        if star
        else f'form-data; name="file"; filename="{filename}"'
    )
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(connection: http.client.HTTPConnection, live: Live, body: bytes, **headers: str) -> http.client.HTTPResponse:
    connection.request(
        "POST",
        "/api/v1/media/",
        body,
        {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": f"Bearer {live.token}",
            **headers,
        },
    )
    return connection.getresponse()


def test_every_hostile_upload_is_answered_and_the_connection_stays_usable(live: Live) -> None:
    connection, opened, answers = live.connect(), 1, []
    for entry in CORPUS:
        for star in (False, True):  # plain and RFC 5987 filenames: the percent-encoded one is three times longer
            response = upload(connection, live, form(entry.filename, entry.data, entry.content_type, star=star))
            body = response.read()
            assert response.status < 500, (entry.name, response.status, body[:300])
            if response.status >= 400:
                assert set(json.loads(body)) == {"code", "message", "details"}, (entry.name, body[:300])
            answers.append((entry.name, response.status))
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection, opened = live.connect(), opened + 1
                continue
            # the next request on this same connection is answered
            connection.request("GET", "/health")
            follow = connection.getresponse()
            assert follow.status == 200, (entry.name, follow.status)
            follow.read()
    assert len(answers) == 2 * len(CORPUS)
    assert opened == 1, f"{opened - 1} responses asked to close the connection"


def test_a_refusal_for_an_over_long_part_header_does_not_poison_the_connection(live: Live) -> None:
    """The defect itself: 400 malformed_request, then the next upload on the same connection is answered."""
    photo = photo_jpeg(1024, quality=95)  # 250 KB: more than Django reads plus the 64 KiB gunicorn drains
    hostile = form("é" * 300 + ".jpg", photo, "image/jpeg", star=True)
    connection = live.connect()
    for _ in range(4):
        refused = upload(connection, live, hostile)
        assert refused.status == 400 and json.loads(refused.read())["code"] == "malformed_request"
        assert refused.getheader("Connection", "keep-alive").lower() == "keep-alive"
        accepted = upload(connection, live, form("ok.jpg", photo, "image/jpeg"))
        assert accepted.status in (200, 201), accepted.read()[:300]
        accepted.read()


def test_a_body_too_large_to_drain_is_answered_with_connection_close(live: Live) -> None:
    """A lying Content-Length (1 GiB declared, 64 KiB sent): 413 at once, and the response says the connection
    closes instead of leaving the client to find out on its next request."""
    connection = live.connect()
    connection.putrequest("POST", "/api/v1/media/")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Authorization", f"Bearer {live.token}")
    connection.putheader("Content-Length", str(1 << 30))
    connection.endheaders(form("big.jpg", b"\xff\xd8" + bytes(64 * 1024), "image/jpeg"))
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["code"] == "payload_too_large"
    assert response.getheader("Connection", "").lower() == "close"
    connection.close()
    fresh = live.connect()
    fresh.request("GET", "/health")
    assert fresh.getresponse().status == 200


def test_a_body_shorter_than_its_content_length_gets_a_4xx_not_a_hang(live: Live) -> None:
    """Content-Length smaller than the body: the request is cut where the header says and refused as malformed;
    the bytes after it are not a request, and gunicorn answers them with 400 and closes."""
    body = form("cut.jpg", photo_jpeg(128), "image/jpeg")
    connection = live.connect()
    connection.putrequest("POST", "/api/v1/media/")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Authorization", f"Bearer {live.token}")
    connection.putheader("Content-Length", "200")
    connection.endheaders(body)
    response = connection.getresponse()
    assert 400 <= response.status < 500
    response.read()
