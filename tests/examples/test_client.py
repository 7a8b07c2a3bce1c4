"""The example client (examples/hlekkr_client.py) run as a real program against the live test server.

Celery is eager in the test settings, so the analysis runs inside the upload request and the client's first
poll (or the webhook) sees the result.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fetch_server import FetchServer
from PIL import Image

from hlekkr.accounts.services import api_key_create
from media.models import MediaItem

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "examples" / "hlekkr_client.py"
PASSWORD = "correct-horse-battery-1"  # tests/conftest.py's cast

pytestmark = pytest.mark.django_db(transaction=True)


def _photo(side: int = 160) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side)).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def _noise_png(side: int) -> bytes:
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((side, side, 3)) * 255).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()


def _run(live_server: Any, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HLEKKR_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, str(CLIENT), "--url", live_server.url, "--timeout", "60", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_it_uploads_a_small_image_with_a_password_and_prints_the_verdict(
    live_server: Any, client_a: Any, tmp_path: Path
) -> None:
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(_photo())
    result = _run(live_server, str(photo), env={"HLEKKR_USERNAME": "client_a", "HLEKKR_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr
    item = MediaItem.objects.get(owner=client_a)
    assert item.analysis_status == "completed"
    assert result.stdout.strip() == f"media {item.id}: verdict {item.verdict}, trust score {item.trust_score}"
    assert "uploaded portrait.jpg directly" in result.stderr


def test_it_resumes_an_interrupted_multipart_upload_with_an_api_key(
    live_server: Any, client_a: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media import conf

    monkeypatch.setattr(conf, "MIN_PART_SIZE", 192 * 1024)  # three parts from a small file (server in-process)
    image = tmp_path / "noise.png"
    image.write_bytes(_noise_png(400))
    size = image.stat().st_size
    assert 2 * 192 * 1024 < size <= 3 * 192 * 1024
    key = api_key_create(user=client_a, name="client", scopes=["media:read", "media:write"]).plaintext
    state = tmp_path / "upload-state.json"
    common = ["--multipart-threshold", "100000", "--state-file", str(state), str(image)]

    first = _run(live_server, "--stop-after-parts", "1", *common, env={"HLEKKR_API_KEY": key})
    assert first.returncode == 3, first.stderr
    assert "started multipart upload" in first.stderr and state.exists()
    assert not MediaItem.objects.filter(owner=client_a, analysis_status="completed").exists()

    second = _run(live_server, *common, env={"HLEKKR_API_KEY": key})
    assert second.returncode == 0, second.stderr
    assert "1 of 3 parts already there, 2 to send" in second.stderr
    assert not state.exists()
    item = MediaItem.objects.get(owner=client_a)
    assert (item.size, item.analysis_status) == (size, "completed")
    assert f"verdict {item.verdict}, trust score {item.trust_score}" in second.stdout


def test_it_can_wait_for_the_signed_webhook_instead_of_polling(
    live_server: Any, client_a: Any, tmp_path: Path, settings: Any
) -> None:
    settings.HLEKKR_WEBHOOKS_ALLOW_LOOPBACK = True
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(_photo(128))
    result = _run(
        live_server,
        "--webhook-port",
        "0",
        str(photo),
        env={"HLEKKR_USERNAME": "client_a", "HLEKKR_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0, result.stderr
    assert "webhook analysis.completed received" in result.stderr
    from hlekkr.audit.models import AuditEvent
    from hlekkr.webhooks.models import WebhookEndpoint

    # The client registered a temporary endpoint (deliveries go with it when it is removed at the end).
    assert AuditEvent.objects.filter(action="webhook.endpoint_created").exists()
    assert not WebhookEndpoint.objects.exists()


# --- retry behaviour, against a scripted server on loopback ------------------------------------------------
def _load_client_module() -> Any:
    spec = importlib.util.spec_from_file_location("hlekkr_example_client", CLIENT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def scripted_server() -> Any:
    """scripted_server([(status, headers, body), ...]) answers requests in order and records (method, path, auth)."""
    servers: list[HTTPServer] = []

    def start(script: list[tuple[int, dict[str, str], bytes]]) -> tuple[str, list[tuple[str, str, str]]]:
        seen: list[tuple[str, str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                status, headers, body = script.pop(0)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_429_waits_the_retry_after_the_server_names(scripted_server: Callable[..., Any]) -> None:
    module = _load_client_module()
    base, seen = scripted_server(
        [
            (429, {"Retry-After": "7"}, b'{"code":"rate_limited","message":"slow down","details":{}}'),
            (429, {}, b'{"code":"rate_limited","message":"slow down","details":{}}'),
            (200, {}, b'{"id":"m1","analysis_status":"completed"}'),
        ]
    )
    slept: list[float] = []
    client = module.HlekkrClient(base, api_key="hk_x.y", sleep=slept.append, log=lambda m: None)
    assert client.api_json("GET", "/api/v1/media/m1/")["id"] == "m1"
    assert slept[0] == 7.0
    assert 0.5 <= slept[1] <= 2.0  # no Retry-After: exponential backoff with jitter (attempt 1)
    assert [s[2] for s in seen] == ["Api-Key hk_x.y"] * 3


def test_an_expired_access_token_is_refreshed_once(scripted_server: Callable[..., Any]) -> None:
    module = _load_client_module()
    base, seen = scripted_server(
        [
            (200, {}, b'{"access":"A1","refresh":"R1"}'),
            (401, {}, b'{"code":"token_expired","message":"expired","details":{}}'),
            (200, {}, b'{"access":"A2","refresh":"R2"}'),
            (200, {}, b'{"id":"m1"}'),
        ]
    )
    client = module.HlekkrClient(base, username="u", password="p", sleep=lambda s: None, log=lambda m: None)
    assert client.api_json("GET", "/api/v1/media/m1/") == {"id": "m1"}
    assert [(m, p) for m, p, _ in seen] == [
        ("POST", "/api/v1/auth/token/"),
        ("GET", "/api/v1/media/m1/"),
        ("POST", "/api/v1/auth/token/refresh/"),
        ("GET", "/api/v1/media/m1/"),
    ]
    assert seen[1][2] == "Bearer A1" and seen[3][2] == "Bearer A2"
    assert client.refresh == "R2"


def test_the_client_verifies_webhook_signatures_like_the_docs_say() -> None:
    module = _load_client_module()
    from hlekkr.webhooks import signing

    body = b'{"id":"e1"}'
    assert module.verify_signature("whsec_s", signing.header_value("whsec_s", body), body)
    assert not module.verify_signature("whsec_s", signing.header_value("whsec_s", body, timestamp=1000), body)
    assert not module.verify_signature("whsec_other", signing.header_value("whsec_s", body), body)


def test_it_hands_hlekkr_a_link_and_prints_the_verdict(
    live_server: Any, client_a: Any, fetch_server: FetchServer
) -> None:
    url = fetch_server.serve("/story/photo.jpg", _photo(144))
    result = _run(live_server, url, env={"HLEKKR_USERNAME": "client_a", "HLEKKR_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr
    item = MediaItem.objects.get(owner=client_a, status="stored")
    assert f"asked Hlekkr to fetch {url}: media {item.id}" in result.stderr
    assert result.stdout.strip() == f"media {item.id}: verdict {item.verdict}, trust score {item.trust_score}"


def test_a_refused_link_exits_4_with_the_code(live_server: Any, client_a: Any, fetch_server: FetchServer) -> None:
    url = fetch_server.serve("/empty.html", b"<html><body>nothing</body></html>", "text/html")
    result = _run(live_server, url, env={"HLEKKR_USERNAME": "client_a", "HLEKKR_PASSWORD": PASSWORD})
    assert result.returncode == 4, result.stderr
    assert "refused (page_without_media" in result.stdout


def test_it_analyses_files_and_links_as_one_batch(
    live_server: Any, client_a: Any, fetch_server: FetchServer, tmp_path: Path
) -> None:
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(_photo(136))
    good = fetch_server.serve("/noise.png", _noise_png(64), content_type="image/png")
    bad = fetch_server.serve("/words.html", b"<html><body>words</body></html>", "text/html")
    result = _run(
        live_server, "--batch", str(photo), good, bad, env={"HLEKKR_USERNAME": "client_a", "HLEKKR_PASSWORD": PASSWORD}
    )
    assert result.returncode == 4, result.stderr  # one entry was refused
    lines = result.stdout.strip().splitlines()
    uploaded = MediaItem.objects.get(owner=client_a, original_filename="portrait.jpg")
    assert lines[0] == f"{photo}: verdict {uploaded.verdict}, trust score {uploaded.trust_score}"
    assert lines[1].startswith(f"{good}: verdict ")
    assert lines[2] == f"{bad}: failed (page_without_media)"
