"""Load test: Hlekkr under gunicorn on PostgreSQL and Redis (loopback), against a bare Django JSON view served
by the same gunicorn settings in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlekkr REDIS_URL=redis://127.0.0.1:6379/7 \\
        python bench/load.py [--port 8107] [--bare-port PORT+1] [--seconds 8] [--rounds 4] [--rate 200] \\
            [--connections 16]

It creates and drops its own database (<name>_bench_load), seeds a client with 200 items, an API key, 50
moderators and 1,000 review items, raises the rate-limit policies out of the way (the limiter still counts
every request, on Redis), and starts gunicorn (2 workers x 4 threads, gthread) for Hlekkr on `--port` and for
bench/bare_settings.py on `--bare-port`, side by side (a server that is not being measured idles). The load
generator is asyncio over keep-alive HTTP/1.1 connections in this process, which shares the machine's cores
with the server: figures are printed as ratios to the bare view measured the same way in the same run.

Each phase's `--seconds` are split into `--rounds` slices that take turns with the bare view's (bare, health,
detail, ..., bare, health, detail, ...), so a change in what else the machine runs during the run (other
sessions' work) falls on the bare view and on Hlekkr alike instead of on whichever was measured at that moment.

Phases:
1. throughput, closed loop (`--connections` connections, each sending as soon as the last answer came):
   bare view, /health, cached detail (JWT, API key, include_details), list first page;
2. constant rate `--rate` req/s of cached detail reads (latency from each request's scheduled start, so a
   stalled server is not hidden by a stalled client), and the bare view at the same rate;
3. a constant-rate mix: detail reads, list reads, multipart upload initiations and review "next item" claims.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N_ITEMS, N_MODERATORS, N_REVIEW_ITEMS = 200, 50, 1000


# --- the database and the seed ----------------------------------------------------------------------------
@contextmanager
def bench_database(url: str) -> Iterator[str]:
    import psycopg

    base, _, name = url.rpartition("/")
    bench_name = f"{name.split('?')[0]}_bench_load"
    admin = f"{base}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_name}"')
    try:
        yield f"{base}/{bench_name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')


@dataclass
class Seed:
    items: list[str]
    client_jwt: str
    client_key: str
    moderator_jwts: list[str]


def seed() -> Seed:
    import random

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    call_command("migrate", verbosity=0)
    from analysis.models import Analysis
    from hlekkr.accounts.models import Role, User
    from hlekkr.accounts.services import api_key_create
    from media.models import MediaItem
    from ratelimit.models import RateLimitPolicy
    from review.models import EscalationPolicy, ModeratorProfile, ReviewItem

    cache.clear()
    # Out of the way but still counted: every request still runs the limiter against Redis.
    for policy in RateLimitPolicy.objects.all():
        policy.rate = "99999999/" + policy.rate.split("/", 1)[1]
        policy.save()
    EscalationPolicy.objects.filter(is_active=True).update(auto_assign=False)
    owner = User.objects.create_user(username="load-client", password=None, role=Role.CLIENT)
    items = MediaItem.objects.bulk_create(
        MediaItem(
            owner=owner,
            kind="image",
            mime_type="image/jpeg",
            size=1000 + i,
            sha256=f"{i:064x}",
            original_filename=f"photo-{i}.jpg",
            storage_key=f"bench/{i}.jpg",
            status="stored",
            trust_score=80,
            verdict="no_manipulation_found",
            analysis_status="completed",
        )
        for i in range(N_ITEMS)
    )
    key = api_key_create(user=owner, name="load", scopes=["media:read", "media:write"])
    rng = random.Random(1)
    reviewable = MediaItem.objects.bulk_create(
        MediaItem(owner=owner, kind="image", sha256=f"{i + N_ITEMS:064x}", status="stored")
        for i in range(N_REVIEW_ITEMS)
    )
    analyses = Analysis.objects.bulk_create(Analysis(media=m, run_number=1, status="completed") for m in reviewable)
    now = timezone.now()
    ReviewItem.objects.bulk_create(
        ReviewItem(
            analysis=a,
            media=a.media,
            priority=p,
            priority_rank=["critical", "high", "medium", "low"].index(p),
            required_expertise=["image"],
            due_at=now + timezone.timedelta(minutes=rng.randint(-30, 600)),
            kind="image",
            machine_probability=0.7,
        )
        for a in analyses
        for p in [rng.choice(["critical", "high", "medium", "low"])]
    )
    moderators = []
    for n in range(N_MODERATORS):
        user = User.objects.create_user(username=f"load-mod-{n}", password=None, role=Role.MODERATOR)
        ModeratorProfile.objects.create(user=user, seniority="lead", expertise={"image": 4}, max_concurrent=1000)
        moderators.append(str(AccessToken.for_user(user)))
    from django.db import connection, connections

    # Statistics, as a database in service has them: autovacuum analyzes a table about a minute after a bulk
    # load, so without this the first slices of a run were planned blind (the list sorted every item of the
    # owner, ~0.5 ms of PostgreSQL per request) and later ones were not.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    return Seed([str(i.pk) for i in items], str(AccessToken.for_user(owner)), key.plaintext, moderators)


# --- gunicorn ---------------------------------------------------------------------------------------------
@contextmanager
def gunicorn(app: str, *, port: int, env: dict[str, str], probe: str) -> Iterator[None]:
    command = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--worker-class", "gthread", "--threads", "4",
        "--keep-alive", "60", "--backlog", "512", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"gunicorn for {app} did not come up")
            time.sleep(0.3)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the load generator -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    name: str
    raw: bytes

    @staticmethod
    def make(name: str, method: str, path: str, *, token: str = "", key: str = "", body: Any = None) -> Req:
        headers = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
        if token:
            headers.append(f"Authorization: Bearer {token}")
        if key:
            headers.append(f"Authorization: Api-Key {key}")
        payload = b""
        if body is not None or method == "POST":
            payload = json.dumps(body or {}).encode() if body is not None else b""
            headers += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        return Req(name, ("\r\n".join(headers) + "\r\n\r\n").encode() + payload)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, status: int, ms: float) -> None:
        self.latencies.append(ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close, chunked = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered, value = name.strip().lower(), value.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value == b"close":
                close = True
            elif lowered == b"transfer-encoding" and value == b"chunked":
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length and status not in (204, 304):
            await self.reader.readexactly(length)
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return status


async def closed_loop(port: int, requests: list[Req], *, connections: int, seconds: float) -> Result:
    result = Result()
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        conn = Connection(port)
        i = n
        while time.perf_counter() < stop:
            req = requests[i % len(requests)]
            i += connections
            started = time.perf_counter()
            status = await conn.send(req.raw)
            result.add(status, (time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def constant_rate(port: int, streams: dict[str, tuple[float, list[Req]]], *, seconds: float) -> dict[str, Result]:
    """Each stream sends `rate` requests per second on its own schedule; a request waits for a free connection
    (pool of 64), and its latency runs from its scheduled start."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(Connection(port))
    results = {name: Result() for name in streams}
    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.05

    async def one(name: str, req: Req, due: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.send(req.raw)
        finally:
            pool.put_nowait(conn)
        results[name].add(status, (time.perf_counter() - due) * 1000)

    async def schedule(name: str, rate: float, requests: list[Req]) -> None:
        count = int(rate * seconds)
        for i in range(count):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(name, requests[i % len(requests)], due)))

    await asyncio.gather(*(schedule(name, rate, reqs) for name, (rate, reqs) in streams.items()))
    await asyncio.gather(*tasks)
    for result in results.values():
        result.seconds = seconds
    return results


# --- the run ----------------------------------------------------------------------------------------------
def line(label: str, result: Result, base: Result | None, *, rate_based: bool = False) -> str:
    text = (
        f"{label:<44} {result.rps:8.0f} req/s  p50 {result.pct(0.5):7.2f}  p95 {result.pct(0.95):7.2f}"
        f"  p99 {result.pct(0.99):7.2f} ms"
    )
    if base is not None and not rate_based:
        text += f"  {result.rps / base.rps:6.3f}x bare throughput"
    if base is not None and rate_based:
        text += f"  p99 {result.pct(0.99) / base.pct(0.99):5.2f}x bare"
    bad = {s: n for s, n in result.statuses.items() if s >= 400}
    return text + (f"  errors {bad}" if bad else "")


def interleaved(runs: list[tuple[str, Any]], *, rounds: int) -> dict[str, Any]:
    """Run each (name, make_slice) `rounds` times in turn and merge each name's slices: {name: Result} or
    {name: {stream: Result}} as the slices return."""
    merged: dict[str, Any] = {}
    for _ in range(rounds):
        for name, make_slice in runs:
            piece = asyncio.run(make_slice())
            if isinstance(piece, Result):
                merged[name] = _merge(merged.get(name), piece)
            else:
                into = merged.setdefault(name, {})
                for stream, result in piece.items():
                    into[stream] = _merge(into.get(stream), result)
    return merged


def _merge(into: Result | None, piece: Result) -> Result:
    into = into or Result()
    into.latencies += piece.latencies
    for status, n in piece.statuses.items():
        into.statuses[status] = into.statuses.get(status, 0) + n
    into.seconds += piece.seconds
    return into


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8107")))
    parser.add_argument("--bare-port", type=int, default=0, help="default: --port + 1")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    port, bare_port = args.port, args.bare_port or args.port + 1
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis): the load test measures the production shape")

    with bench_database(database_url) as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "HLEKKR_LOG_LEVEL": "WARNING",
            "HLEKKR_JWT_ACCESS_SECONDS": "3600",
            "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}",
        }
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "HLEKKR_LOG_LEVEL",
                                               "HLEKKR_JWT_ACCESS_SECONDS", "DJANGO_SETTINGS_MODULE")})  # fmt: skip
        data = seed()
        items = data.items
        detail = [Req.make("detail", "GET", f"/api/v1/media/{i}/", token=data.client_jwt) for i in items]
        detail_key = [Req.make("detail_key", "GET", f"/api/v1/media/{i}/", key=data.client_key) for i in items]
        details = [
            Req.make("details", "GET", f"/api/v1/media/{i}/?include_details=true", token=data.client_jwt) for i in items
        ]
        listing = [Req.make("list", "GET", "/api/v1/media/", token=data.client_jwt)]
        health = [Req.make("health", "GET", "/health")]
        uploads = [
            Req.make(
                "upload_init",
                "POST",
                "/api/v1/media/uploads/",
                token=data.client_jwt,
                body={"filename": f"clip-{n}.mp4", "size": 20 * 1024 * 1024, "content_type": "video/mp4"},
            )
            for n in range(50)
        ]
        claims = [Req.make("claim", "POST", "/api/v1/review/next/", token=t) for t in data.moderator_jwts]
        bare = [Req.make("bare", "GET", "/bare/")]
        c, s, rounds = args.connections, args.seconds, max(1, args.rounds)
        piece = s / rounds
        print(f"load test on {os.cpu_count()} cores, shared with other work; gunicorn 2 workers x 4 threads; "
              f"{c} connections, {s:.0f} s per phase in {rounds} slices taking turns with the bare view's; "
              "latency in ms")  # fmt: skip

        def loop(at: int, reqs: list[Req]) -> Any:
            return lambda: closed_loop(at, reqs, connections=c, seconds=piece)

        def rate(at: int, streams: dict[str, tuple[float, list[Req]]]) -> Any:
            return lambda: constant_rate(at, streams, seconds=piece)

        mix_streams = {
            "detail": (args.rate * 0.75, detail),
            "list": (args.rate * 0.15, listing),
            "upload_init": (args.rate * 0.05, uploads),
            "claim": (args.rate * 0.05, claims),
        }
        with (
            gunicorn("django.core.wsgi:get_wsgi_application()", port=bare_port, env={**env,
                     "DJANGO_SETTINGS_MODULE": "bare_settings"}, probe="/bare/"),
            gunicorn("hlekkr.wsgi:application", port=port, env=env, probe="/health"),
        ):  # fmt: skip
            asyncio.run(closed_loop(bare_port, bare, connections=c, seconds=1))  # warm
            for reqs in (detail, detail_key, details, listing):  # warm: fill the detail cache and auth caches
                asyncio.run(closed_loop(port, reqs, connections=c, seconds=1.5))
            throughput = interleaved(
                [
                    ("bare", loop(bare_port, bare)),
                    ("/health", loop(port, health)),
                    ("GET media/{id}/ JWT, cached", loop(port, detail)),
                    ("GET media/{id}/ API key, cached", loop(port, detail_key)),
                    ("GET media/{id}/?include_details=true", loop(port, details)),
                    ("GET media/ first page (25 rows)", loop(port, listing)),
                ],
                rounds=rounds,
            )
            bare_tp = throughput.pop("bare")
            at_rate = interleaved(
                [
                    ("bare", rate(bare_port, {"bare": (args.rate, bare)})),
                    ("detail", rate(port, {"detail": (args.rate, detail)})),
                ],
                rounds=rounds,
            )
            bare_rate, detail_rate = at_rate["bare"]["bare"], at_rate["detail"]["detail"]
            mixed = interleaved(
                [("bare", rate(bare_port, {"bare": (args.rate, bare)})), ("mix", rate(port, mix_streams))],
                rounds=rounds,
            )
            bare_mix, mix = mixed["bare"]["bare"], mixed["mix"]

    print("\n1. throughput, closed loop")
    print(line("bare Django JsonResponse (no middleware)", bare_tp, None))
    for name, result in throughput.items():
        print(line(name, result, bare_tp))
    print(f"\n2. constant rate {args.rate:.0f} req/s (latency from the scheduled start)")
    print(line("bare Django JsonResponse", bare_rate, None))
    print(line("GET media/{id}/ JWT, cached", detail_rate, bare_rate, rate_based=True))
    print(f"\n3. constant-rate mix, {args.rate:.0f} req/s in all (bare view alone at the same total rate as baseline)")
    print(line("bare Django JsonResponse", bare_mix, None))
    for name, result in mix.items():
        print(line(f"{name} ({result.rps:.0f}/s)", result, bare_mix, rate_based=True))
    print(
        f"\ntargets: cached detail >= 0.3x bare throughput: "
        f"{throughput['GET media/{id}/ JWT, cached'].rps / bare_tp.rps:.3f}x; list >= 0.15x: "
        f"{throughput['GET media/ first page (25 rows)'].rps / bare_tp.rps:.3f}x; detail p99 < 20 ms at "
        f"{args.rate:.0f} req/s: {detail_rate.pct(0.99):.1f} ms"
    )


if __name__ == "__main__":
    main()
