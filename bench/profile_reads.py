"""Where a read's time goes: the read endpoints called in process through Hlekkr's WSGI application (its whole
middleware stack and the unread-body guard), on PostgreSQL and Redis, timed and profiled.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlekkr REDIS_URL=redis://127.0.0.1:6379/7 \\
        python bench/profile_reads.py [-n 2000] [--profile detail|list|health|detail_key] [--top 40]

Seeds a database of its own as bench/load.py does (<name>_bench_load, dropped afterwards), warms every cache,
then prints the CPU microseconds per request of each read (one thread, no network: what the server spends)
next to a bare Django JSON view called through a plain WSGIHandler with no middleware in the same process. With
`--profile` it runs cProfile over `-n` requests of that read and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import bench_database, seed  # noqa: E402


def environ(path: str, *, auth: str = "", query: str = "") -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if auth:
        env["HTTP_AUTHORIZATION"] = auth
    return env


def call(app: Any, env: dict[str, Any]) -> str:
    status: list[str] = []

    def start_response(s: str, headers: Any, exc_info: Any = None) -> None:
        status.append(s)

    body = app(dict(env), start_response)
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return status[0]


def per_request_us(app: Any, envs: list[dict[str, Any]], n: int) -> float:
    started = time.process_time()
    for i in range(n):
        call(app, envs[i % len(envs)])
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--profile", choices=["health", "detail", "detail_key", "details", "list"])
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis)")
    with bench_database(database_url) as url:
        os.environ.update(
            {
                "DATABASE_URL": url,
                "HLEKKR_LOG_LEVEL": "WARNING",
                "HLEKKR_JWT_ACCESS_SECONDS": "3600",
                "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
            }
        )
        data = seed()
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.db import connections
        from django.http import JsonResponse

        from hlekkr.wsgi import application

        jwt, key = f"Bearer {data.client_jwt}", f"Api-Key {data.client_key}"
        reads = {
            "health": [environ("/health")],
            "detail": [environ(f"/api/v1/media/{i}/", auth=jwt) for i in data.items],
            "detail_key": [environ(f"/api/v1/media/{i}/", auth=key) for i in data.items],
            "details": [environ(f"/api/v1/media/{i}/", auth=jwt, query="include_details=true") for i in data.items],
            "list": [environ("/api/v1/media/", auth=jwt)],
        }

        class Bare(WSGIHandler):
            """Django's handler with no middleware answering what bench/bare_settings.py's view answers."""

            def load_middleware(self, is_async: bool = False) -> None:
                def view(request: Any) -> Any:
                    return JsonResponse(
                        {"id": "00000000-0000-0000-0000-000000000000", "status": "stored", "trust_score": 83}
                    )

                self._middleware_chain = view  # type: ignore[assignment]

        settings.HLEKKR_REQUEST_STATS_FLUSH_AT_EXIT = False  # the database is gone by then
        bare = Bare()
        for envs in reads.values():  # warm: detail cache, auth caches, policies, compiled queries
            for env in envs:
                assert call(application, env).startswith("200"), env["PATH_INFO"]
        per_request_us(bare, [environ("/bare/")], 200)

        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall: other work shares the machine
            profiler.enable()
            per_request_us(application, reads[args.profile], args.n)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
        else:
            bare_us = per_request_us(bare, [environ("/bare/")], args.n)
            print(f"CPU per request, one thread, in process ({args.n} requests each)")
            print(f"{'bare Django JsonResponse (no middleware)':<42} {bare_us:8.0f} us")
            for name, envs in reads.items():
                us = per_request_us(application, envs, args.n)
                print(f"{name:<42} {us:8.0f} us  {bare_us / us:6.3f}x bare")
        connections.close_all()


if __name__ == "__main__":
    main()
