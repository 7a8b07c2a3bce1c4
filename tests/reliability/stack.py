"""A whole Hlekkr of real processes for fault injection: a PostgreSQL server and two Redis servers of its own
(initdb / redis-server on spare loopback ports, never the shared ones), gunicorn, supervised Celery workers and
beat. Faults are then real: stop a server, SIGKILL a process, and watch what the product does.

Used by tests/reliability/ (bounded trial counts) and by scripts/fault_trials.py (larger counts).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: CI and the dev machines are root, so drop to `postgres`."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no /usr/lib/postgresql/*/bin/{name}: install the postgresql package")
    return found[-1]


class PostgresServer:
    """A throw-away cluster (fsync off: durability is not what these tests measure) on a spare port."""

    def __init__(self, root: Path):
        self.dir = root / "pg"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            [*_as_postgres_user(), pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [
                *_as_postgres_user(),
                pg_bin("pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-l",
                str(self.dir / "log"),
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*_as_postgres_user(), pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"],
            check=False,
            capture_output=True,
        )

    def url(self, name: str = "hlekkr") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str = "hlekkr") -> None:
        subprocess.run(
            [pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )

    def sql(self, query: str, *params: Any, name: str = "hlekkr") -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(name).replace("postgres://", "postgresql://"), autocommit=True) as conn:
            cursor = conn.execute(query, params or None)
            return list(cursor.fetchall()) if cursor.description else []


class RedisServer:
    """redis-server without persistence on a spare port; stop() and start() again to take it away and back."""

    def __init__(self, root: Path, name: str):
        self.port = free_port()
        self.log = root / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ping, timeout=10, what=f"redis on {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@dataclass
class Service:
    """One long-running process of ours, in its own process group so a fault can hit it and its children."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)
        # Whatever the group left behind (a pool child of a killed worker) goes too.
        self.signal_group(signal.SIGKILL)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Stack:
    """The processes of one Hlekkr install. `root` holds var/, logs and the servers' files."""

    root: Path
    pg: PostgresServer
    broker: RedisServer
    cache: RedisServer
    receiver_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    web_port: int = 0
    api_key: str = ""

    # --- environment -------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        keep = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_", "HLEKKR_"))
        }
        keep.pop("DJANGO_SETTINGS_MODULE", None)
        keep.update(
            {
                "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
                "DATABASE_URL": self.pg.url(),
                "CELERY_BROKER_URL": self.broker.url(0),
                "REDIS_URL": self.cache.url(0),
                "HLEKKR_VAR_DIR": str(self.root / "var"),
                "HLEKKR_WEBHOOKS_ALLOW_LOOPBACK": "true",
                "HLEKKR_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(self.root / "prom"),
            }
        )
        keep.update(self.extra_env)
        return keep

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # --- services ----------------------------------------------------------------------------------------
    def _service(self, name: str, argv: list[str]) -> Service:
        service = Service(name, argv, self.env(), self.root / f"{name}.log")
        self.services[name] = service
        service.start()
        return service

    def start_web(self, workers: int = 2) -> Service:
        self.web_port = self.web_port or free_port()
        (self.root / "prom").mkdir(exist_ok=True)
        service = self._service(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "hlekkr.wsgi:application",
                "-c",
                str(ROOT / "hlekkr" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(workers),
                "--threads",
                "4",
                "--timeout",
                "60",
                "--keep-alive",
                "5",
            ],
        )
        wait_until(lambda: self.http("GET", "/health")[0] == 200, timeout=60, what="gunicorn /health")
        return service

    def start_worker(self, name: str = "worker", concurrency: int = 2, queues: str = "") -> Service:
        """A worker under the supervisor that `make run` uses, so a dead worker comes back by itself."""
        queues = queues or "interactive,default,batch,bedrock,webhooks,maintenance"
        return self._service(
            name,
            [
                PYTHON,
                str(ROOT / "scripts" / "supervise.py"),
                "--name",
                name,
                "--max-backoff",
                "1",
                "--",
                PYTHON,
                "-m",
                "celery",
                "-A",
                "hlekkr",
                "worker",
                "-n",
                f"{name}@%h",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        )

    def start_beat(self) -> Service:
        return self._service(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "hlekkr",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.root / "celerybeat-schedule"),
            ],
        )

    def worker_names(self) -> list[str]:
        return [name for name in self.services if name.startswith("worker")]

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self.services.clear()

    # --- the worker's processes --------------------------------------------------------------------------
    def worker_main_pid(self, name: str = "worker") -> int | None:
        """The celery worker's main process (the supervisor's child), or None between restarts."""
        found = children(self.services[name].pid)
        return found[0] if found else None

    def pool_pids(self, name: str = "worker") -> list[int]:
        main = self.worker_main_pid(name)
        return children(main) if main else []

    # --- HTTP ----------------------------------------------------------------------------------------------
    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, Any] | list[Any] | None, float]:
        """(status, JSON body or None, seconds) of one request to gunicorn; a refused connection is status 0."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}", data=body, method=method, headers=headers or {}
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None, time.monotonic() - started
        elapsed = time.monotonic() - started
        try:
            return status, json.loads(raw) if raw else None, elapsed
        except ValueError:
            return status, None, elapsed

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.api_key}"}

    def upload(
        self, data: bytes, filename: str = "photo.png", content_type: str = "image/png"
    ) -> tuple[int, Any, float]:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {**self.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.http("POST", "/api/v1/media/", body=body, headers=headers)

    # --- what the database says ----------------------------------------------------------------------------
    def analyses(self) -> list[dict[str, Any]]:
        rows = self.pg.sql(
            "SELECT id::text, media_id::text, status, attempts, run_number, finished_at FROM analysis_analysis"
        )
        return [
            dict(zip(("id", "media_id", "status", "attempts", "run_number", "finished_at"), row, strict=True))
            for row in rows
        ]

    def count(self, query: str, *params: Any) -> int:
        return int(self.pg.sql(query, *params)[0][0])


@contextlib.contextmanager
def servers() -> Iterator[tuple[Path, PostgresServer, RedisServer, RedisServer]]:
    """Start our own PostgreSQL (migrated `hlekkr` database) and two Redis servers; remove everything after."""
    root = Path(tempfile.mkdtemp(prefix="hlekkr-faults-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must reach its data directory inside
    pg = PostgresServer(root)
    broker, cache = RedisServer(root, "broker"), RedisServer(root, "cache")
    try:
        pg.start()
        pg.create_database()
        broker.start()
        cache.start()
        yield root, pg, broker, cache
    finally:
        broker.stop()
        cache.stop()
        pg.stop("immediate")
        if not os.environ.get("HLEKKR_KEEP_FAULT_DIR"):
            shutil.rmtree(root, ignore_errors=True)
