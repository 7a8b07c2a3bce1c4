#!/usr/bin/env python3
"""Hlekkr example client: upload a file, wait for the analysis, print the verdict and trust score.

Only `requests` and the standard library. Usage:

    export HLEKKR_URL=https://hlekkr.example.com
    export HLEKKR_API_KEY=hk_xxxx.yyyy                      # or HLEKKR_USERNAME / HLEKKR_PASSWORD (JWT)
    python hlekkr_client.py photo.jpg                      # polls with backoff
    python hlekkr_client.py --webhook-port 8765 video.mp4  # or waits for the signed webhook on 127.0.0.1
    python hlekkr_client.py https://news.example/story      # a link: Hlekkr fetches the page's media itself
    python hlekkr_client.py --batch a.jpg b.mp4 https://news.example/story  # one batch, one line per item

Files larger than --multipart-threshold go through a multipart upload. Progress is saved after every part in a
small JSON state file (default `<file>.hlekkr-upload.json`): run the same command again after an interruption and
only the missing parts are sent. See docs/client.md.

Exit codes: 0 analysed, 1 error, 2 usage, 3 stopped on purpose (--stop-after-parts), 4 analysis failed (or the
fetch of a URL refused), 5 timed out waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import requests

DEFAULT_MULTIPART_THRESHOLD = 20 * 1024 * 1024
RETRYABLE_STATUSES = {429, 502, 503, 504}
SIGNATURE_TOLERANCE_S = 300


class HlekkrError(Exception):
    def __init__(self, message: str, response: requests.Response | None = None):
        super().__init__(message)
        self.response = response


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('code')}: {body.get('message')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


class HlekkrClient:
    """A thin API client: authentication (API key, or JWT with refresh), retries on 429/5xx honouring
    Retry-After, and the upload and wait flows."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_retries: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    ):
        if not api_key and not (username and password):
            raise HlekkrError("give an API key (HLEKKR_API_KEY) or a username and password")
        self.base = base_url.rstrip("/")
        self.api_key = api_key
        self.username, self.password = username, password
        self.access: str | None = None
        self.refresh: str | None = None
        self.max_retries = max_retries
        self.sleep = sleep
        self.log = log
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "hlekkr-example-client/1"

    # --- authentication ---------------------------------------------------------------------------------
    def _auth_header(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"Api-Key {self.api_key}"}
        if self.access is None:
            self.login()
        return {"Authorization": f"Bearer {self.access}"}

    def login(self) -> None:
        response = self._send(
            "POST", "/api/v1/auth/token/", json={"username": self.username, "password": self.password}
        )
        if response.status_code != 200:
            raise HlekkrError(f"login failed: {_error_text(response)}", response)
        tokens = response.json()
        self.access, self.refresh = tokens["access"], tokens["refresh"]

    def _refresh_tokens(self) -> None:
        """Refresh rotates: keep the new refresh token. If refreshing fails (expired, revoked), log in again."""
        if self.refresh:
            response = self._send("POST", "/api/v1/auth/token/refresh/", json={"refresh": self.refresh})
            if response.status_code == 200:
                tokens = response.json()
                self.access, self.refresh = tokens["access"], tokens.get("refresh", self.refresh)
                self.log("access token refreshed")
                return
        self.login()

    # --- requests with retries ----------------------------------------------------------------------------
    def _send(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """One request with retries on 429 and 502/503/504 (Retry-After first, else exponential backoff with
        jitter), and on connection errors."""
        url = path_or_url if path_or_url.startswith("http") else f"{self.base}{path_or_url}"
        kwargs.setdefault("timeout", 60)
        for attempt in range(self.max_retries + 1):
            try:
                response = self.http.request(method, url, **kwargs)
            except requests.ConnectionError:
                if attempt == self.max_retries:
                    raise
                self.sleep(self.backoff(attempt))
                continue
            if response.status_code not in RETRYABLE_STATUSES or attempt == self.max_retries:
                return response
            delay = self.retry_after(response) or self.backoff(attempt)
            self.log(f"{response.status_code} on {method} {url.split('?')[0]}; retrying in {delay:.1f} s")
            self.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def retry_after(response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After", "")
        try:
            return max(0.0, float(value))
        except ValueError:
            return None

    @staticmethod
    def backoff(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:
        return min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated API call; an expired access token (`token_expired`) is refreshed once."""
        headers = {**kwargs.pop("headers", {}), **self._auth_header()}
        response = self._send(method, path, headers=headers, **kwargs)
        if response.status_code == 401 and not self.api_key and _code(response) == "token_expired":
            self._refresh_tokens()
            headers.update(self._auth_header())
            response = self._send(method, path, headers=headers, **kwargs)
        return response

    def api_json(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        if response.status_code not in expect:
            raise HlekkrError(f"{method} {path}: {_error_text(response)}", response)
        return response.json() if response.content else None

    # --- upload -----------------------------------------------------------------------------------------
    def upload(
        self,
        path: Path,
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        state_file: Path | None = None,
        stop_after_parts: int | None = None,
    ) -> dict[str, Any]:
        size = path.stat().st_size
        if size <= multipart_threshold:
            with path.open("rb") as handle:
                item = self.api_json("POST", "/api/v1/media/", files={"file": (path.name, handle)})
            self.log(f"uploaded {path.name} directly: media {item['id']}")
            return dict(item)
        state_path = state_file or path.with_name(path.name + ".hlekkr-upload.json")
        return self._multipart(path, size, state_path, stop_after_parts)

    def _multipart(self, path: Path, size: int, state_path: Path, stop_after_parts: int | None) -> dict[str, Any]:
        fingerprint = {"file": str(path.resolve()), "size": size, "mtime": path.stat().st_mtime}
        state = _load_state(state_path)
        ticket = None
        if state and state.get("fingerprint") == fingerprint:
            response = self.api("GET", f"/api/v1/media/uploads/{state['upload_id']}/")
            if response.status_code == 200 and response.json().get("state") == "active":
                ticket = response.json()
                done = {int(p["part_number"]): p["etag"] for p in ticket.get("parts_received", [])}
                state["etags"] = {str(n): etag for n, etag in done.items()}
                self.log(
                    f"resuming upload {ticket['upload_id']}: {len(done)} of {ticket['part_count']} parts already "
                    f"there, {len(ticket.get('missing_parts', []))} to send"
                )
            else:
                self.log("the saved upload can no longer be resumed; starting again")
        if ticket is None:
            ticket = self.api_json(
                "POST",
                "/api/v1/media/uploads/",
                json={"filename": path.name, "size": size, "content_type": _guess_type(path)},
            )
            state = {"fingerprint": fingerprint, "upload_id": ticket["upload_id"], "media_id": ticket["media_id"]}
            state["etags"] = {}
            _save_state(state_path, state)
            self.log(f"started multipart upload {ticket['upload_id']}: {ticket['part_count']} parts")
        assert state is not None
        part_size = int(ticket["part_size"])
        sent = 0
        with path.open("rb") as handle:
            for part in ticket["parts"]:
                number = int(part["part_number"])
                if str(number) in state["etags"]:
                    continue
                if stop_after_parts is not None and sent >= stop_after_parts:
                    raise Interrupted(f"stopped after {sent} part(s) as asked; run again to resume")
                handle.seek((number - 1) * part_size)
                data = handle.read(part_size)
                # Part URLs are presigned: no Authorization header (S3 would reject a second credential).
                response = self._send("PUT", part["url"], data=data, timeout=300)
                if response.status_code != 200:
                    raise HlekkrError(f"part {number}: {_error_text(response)}", response)
                state["etags"][str(number)] = response.headers["ETag"]
                _save_state(state_path, state)
                sent += 1
        parts = [{"part_number": int(n), "etag": etag} for n, etag in sorted(state["etags"].items(), key=_by_int)]
        item = self.api_json("POST", f"/api/v1/media/uploads/{state['upload_id']}/complete/", json={"parts": parts})
        state_path.unlink(missing_ok=True)
        self.log(f"completed multipart upload: media {item['id']}")
        return dict(item)

    def analyse_url(self, url: str) -> dict[str, Any]:
        """Ask Hlekkr to fetch and analyse the media at `url` (a media file or a page): 202 with the item, whose
        status is `fetching` until a worker has the bytes. Refusals in the request (not http(s), a private
        address, ...) raise HlekkrError with the code (`url_destination_refused`, ...)."""
        item = self.api_json("POST", "/api/v1/media/from-url/", expect=(202,), json={"url": url})
        self.log(f"asked Hlekkr to fetch {url}: media {item['id']}")
        return dict(item)

    def analyse_batch(self, entries: list[str], **upload_options: Any) -> dict[str, Any]:
        """Upload the files among `entries` (URLs are left to Hlekkr), then analyse them all as one batch
        (up to 500). A refusal names every offending entry in `details.entries`."""
        items: list[dict[str, str]] = []
        for entry in entries:
            if entry.startswith(("http://", "https://")):
                items.append({"url": entry})
            else:
                items.append({"media_id": str(self.upload(Path(entry), **upload_options)["id"])})
        batch = self.api_json("POST", "/api/v1/batches/", expect=(201,), json={"items": items})
        self.log(f"batch {batch['id']}: {batch['total']} items")
        return dict(batch)

    def wait_batch(self, batch_id: str, *, timeout: float = 900.0) -> dict[str, Any]:
        """Poll the batch (backoff as for items) until it is completed; return its last body."""
        deadline = time.monotonic() + timeout
        delay = 1.0
        while True:
            batch = self.api_json("GET", f"/api/v1/batches/{batch_id}/")
            if batch.get("status") == "completed":
                return dict(batch)
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"batch {batch_id} not finished after {timeout:.0f} s")
            self.log(f"batch {batch_id}: {batch['counts']}")
            self.sleep(delay)
            delay = min(20.0, delay * 1.5)

    # --- waiting ----------------------------------------------------------------------------------------
    def wait_polling(self, media_id: str, *, timeout: float = 900.0) -> dict[str, Any]:
        """Poll the item with exponential backoff (1 s, 1.5 s, ... up to 20 s); 429s wait their Retry-After.

        An item fetched from a URL ends `rejected` when the fetch is refused (its `source.error` says why); when
        the bytes were already yours the item answers 303 to that item, which requests follows."""
        deadline = time.monotonic() + timeout
        delay = 1.0
        while True:
            item = self.api_json("GET", f"/api/v1/media/{media_id}/")
            if item.get("analysis_status") in ("completed", "failed") or item.get("status") == "rejected":
                return dict(item)
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"analysis of {media_id} not finished after {timeout:.0f} s")
            self.sleep(delay)
            delay = min(20.0, delay * 1.5)


class Interrupted(Exception):
    pass


def _code(response: requests.Response) -> str | None:
    try:
        return str(response.json().get("code"))
    except ValueError:
        return None


def _by_int(pair: tuple[str, str]) -> int:
    return int(pair[0])


def _guess_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)  # atomic: an interruption never leaves half a state file


# --- webhook receiver ---------------------------------------------------------------------------------------
def verify_signature(secret: str, header: str, body: bytes, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """Hlekkr-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>; reject stale timestamps."""
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class WebhookReceiver:
    """A one-purpose HTTP server on 127.0.0.1 that collects verified Hlekkr events."""

    def __init__(self, port: int):
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not verify_signature(receiver.secret, self.headers.get("Hlekkr-Signature", ""), body):
                    self.send_response(401)
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                with receiver.arrived:
                    receiver.events.append(json.loads(body))
                    receiver.arrived.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hlekkr-webhook"

    def wait_for(self, media_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for event in self.events:
                    if event.get("data", {}).get("media_id") == media_id:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.arrived.wait(remaining)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- command line -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload a file to Hlekkr and print its verdict.")
    parser.add_argument("file", help="a file to upload, or an http(s) URL for Hlekkr to fetch")
    parser.add_argument("more", nargs="*", help="with --batch: further files or URLs")
    parser.add_argument("--batch", action="store_true", help="analyse every file and URL given as one batch")
    parser.add_argument("--url", default=os.environ.get("HLEKKR_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--username", default=os.environ.get("HLEKKR_USERNAME"))
    parser.add_argument("--multipart-threshold", type=int, default=DEFAULT_MULTIPART_THRESHOLD, metavar="BYTES")
    parser.add_argument("--state-file", type=Path, help="where multipart progress is kept (resume)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the analysis")
    parser.add_argument("--webhook-port", type=int, help="receive the webhook on 127.0.0.1:PORT instead of polling")
    parser.add_argument("--json", action="store_true", help="print the final item as JSON")
    parser.add_argument("--stop-after-parts", type=int, help=argparse.SUPPRESS)  # simulates an interruption
    args = parser.parse_args(argv)
    if args.batch:
        return _main_batch(parser, args)
    if args.more:
        parser.error("several files or URLs need --batch")
    is_url = args.file.startswith(("http://", "https://"))
    if not is_url and not Path(args.file).is_file():
        parser.error(f"{args.file} is not a file")

    try:
        client = HlekkrClient(
            args.url,
            api_key=os.environ.get("HLEKKR_API_KEY"),
            username=args.username,
            password=os.environ.get("HLEKKR_PASSWORD"),
        )
    except HlekkrError as exc:
        parser.error(str(exc))
    receiver = hook_id = None
    try:
        if args.webhook_port is not None:
            # Registered before the upload, so an analysis that finishes quickly is not missed.
            receiver = WebhookReceiver(args.webhook_port)
            hook = client.api_json(
                "POST",
                "/api/v1/webhooks/",
                json={"url": receiver.url, "events": ["analysis.completed", "analysis.failed"]},
            )
            receiver.secret, hook_id = hook["secret"], hook["id"]
        if is_url:
            item = client.analyse_url(args.file)
        else:
            item = client.upload(
                Path(args.file),
                multipart_threshold=args.multipart_threshold,
                state_file=args.state_file,
                stop_after_parts=args.stop_after_parts,
            )
        media_id = str(item["id"])
        if receiver is not None and item.get("analysis_status") not in ("completed", "failed"):
            event = receiver.wait_for(media_id, args.timeout)
            client.log(f"webhook {event['type']} received" if event else "no webhook arrived; polling instead")
        item = client.wait_polling(media_id, timeout=args.timeout)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        return 5
    except (HlekkrError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if hook_id:
            client.api("DELETE", f"/api/v1/webhooks/{hook_id}/")
        if receiver is not None:
            receiver.close()

    if args.json:
        print(json.dumps(item, indent=2))
    if item.get("analysis_status") == "failed":
        print(f"media {item['id']}: analysis failed")
        return 4
    if item.get("status") == "rejected":
        error = (item.get("source") or {}).get("error") or {}
        print(f"media {item['id']}: refused ({error.get('code')}: {error.get('message')})")
        return 4
    final = f" (human verdict: {item['final_verdict']})" if item.get("final_verdict") else ""
    print(f"media {item['id']}: verdict {item.get('verdict')}, trust score {item.get('trust_score')}{final}")
    return 0


def _main_batch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    entries = [args.file, *args.more]
    for entry in entries:
        if not entry.startswith(("http://", "https://")) and not Path(entry).is_file():
            parser.error(f"{entry} is not a file")
    try:
        client = HlekkrClient(
            args.url,
            api_key=os.environ.get("HLEKKR_API_KEY"),
            username=args.username,
            password=os.environ.get("HLEKKR_PASSWORD"),
        )
        batch = client.analyse_batch(entries, multipart_threshold=args.multipart_threshold)
        batch = client.wait_batch(str(batch["id"]), timeout=args.timeout)
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        return 5
    except (HlekkrError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(batch, indent=2))
    for item, entry in zip(batch["items"], entries, strict=False):
        if item["state"] == "done":
            print(f"{entry}: verdict {item['verdict']}, trust score {item['trust_score']}")
        else:
            print(f"{entry}: {item['state']} ({item['error']})")
    return 0 if all(item["state"] == "done" for item in batch["items"]) else 4


if __name__ == "__main__":
    sys.exit(main())
