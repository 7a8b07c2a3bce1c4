"""A real Hlekkr web process for tests that need one: gunicorn on a free loopback port, with the production
WSGI application and gunicorn config, on an embedded database of its own (SQLite under a temporary HLEKKR_VAR_DIR,
migrated, with the demo users), so nothing it does touches the suite's database.

Used by tests/hostile/test_keepalive_live.py (raw keep-alive connections) and tests/security/test_schemathesis.py
(schemathesis over HTTP). Rate limits are off in it (tests/live_settings.py): those tests send hundreds of
requests in seconds, and what they measure is not the limiter.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "live-Server-password-14"


@dataclass
class LiveServer:
    port: int
    var: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def token(self, username: str) -> str:
        """A JWT access token for one of the demo users (client, moderator, lead, admin)."""
        connection = self.connect()
        connection.request(
            "POST",
            "/api/v1/auth/token/",
            json.dumps({"username": username, "password": PASSWORD}),
            {"Content-Type": "application/json"},
        )
        return str(json.loads(connection.getresponse().read())["access"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(port: int, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.2)


@contextmanager
def live_server(var: Path) -> Iterator[LiveServer]:
    env = {
        **os.environ,
        "HLEKKR_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "live_settings",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT)]),
        "HLEKKR_DEMO_PASSWORD": PASSWORD,
        "HLEKKR_LOG_LEVEL": "WARNING",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME"):
        env.pop(name, None)  # the embedded default: its own SQLite file, local cache, filesystem broker
    python = str(Path(sys.executable))
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "ensure_demo_users"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    with (var / "gunicorn.log").open("wb") as log:
        server = subprocess.Popen(
            [
                *(str(Path(python).parent / "gunicorn"), "-c", "hlekkr/gunicorn.conf.py", "hlekkr.wsgi:application"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--access-logfile", "/dev/null"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(port, server)
            yield LiveServer(port, var)
        finally:
            server.terminate()
            server.wait(timeout=30)
