"""Two versions of Hlekkr's reads side by side: this checkout against another one (an older commit), same
database, same Redis, turn by turn.

    git worktree add /tmp/hlekkr-before <commit> && ln -s "$PWD/.venv" /tmp/hlekkr-before/.venv
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlekkr REDIS_URL=redis://127.0.0.1:6379/7 \\
        python bench/reads_ab.py /tmp/hlekkr-before [--port 8107] [--rounds 6] [--seconds 1]

Seeds a database of its own as bench/load.py does, starts gunicorn (2 workers x 4 threads) from the other
checkout on `--port` and from this one on `--port + 1`, with one SECRET_KEY and JWT key for both, and runs
closed loops of 16 connections for /health, a cached detail read and the list's first page, each version in
turn, `--rounds` times `--seconds`: background load falls on both alike, unlike two runs of bench/load.py at
different moments. Prints mean requests/s per version and this checkout's ratio to the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other", type=Path, help="the other checkout (with its .venv link)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8107")))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres") or not os.environ.get("REDIS_URL", "").startswith("redis"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis)")
    with load.bench_database(database_url) as url:
        env = {
            **os.environ,
            "SECRET_KEY": "reads-ab-" + "s" * 60,
            "JWT_SIGNING_KEY": "reads-ab-jwt-" + "j" * 60,
            "DATABASE_URL": url,
            "HLEKKR_LOG_LEVEL": "WARNING",
            "HLEKKR_JWT_ACCESS_SECONDS": "3600",
            "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
        }
        os.environ.update({k: env[k] for k in ("SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL", "HLEKKR_LOG_LEVEL",
                                               "HLEKKR_JWT_ACCESS_SECONDS", "DJANGO_SETTINGS_MODULE")})  # fmt: skip
        data = load.seed()
        reads = {
            "health": [load.Req.make("health", "GET", "/health")],
            "detail": [
                load.Req.make("detail", "GET", f"/api/v1/media/{i}/", token=data.client_jwt) for i in data.items
            ],
            "list": [load.Req.make("list", "GET", "/api/v1/media/", token=data.client_jwt)],
        }
        versions = {"other": (args.other.resolve(), args.port), "this": (ROOT, args.port + 1)}
        rps: dict[tuple[str, str], list[float]] = {}
        with ExitStack() as stack:
            for root, port in versions.values():
                load.ROOT = root  # gunicorn() starts the server in this directory
                stack.enter_context(load.gunicorn("hlekkr.wsgi:application", port=port, env=env, probe="/health"))
            for _, port in versions.values():  # warm: detail cache, auth caches, compiled queries
                for reqs in reads.values():
                    asyncio.run(load.closed_loop(port, reqs, connections=16, seconds=1.5))
            for _ in range(args.rounds):
                for version, (_, port) in versions.items():
                    for kind, reqs in reads.items():
                        result = asyncio.run(load.closed_loop(port, reqs, connections=16, seconds=args.seconds))
                        bad = {s: n for s, n in result.statuses.items() if s != 200}
                        if bad:
                            sys.exit(f"{version} {kind}: non-200 answers {bad}")
                        rps.setdefault((version, kind), []).append(result.rps)
    print(f"closed loop, 16 connections, {args.rounds} turns of {args.seconds:g} s each; requests/s")
    for kind in reads:
        other = sum(rps["other", kind]) / args.rounds
        this = sum(rps["this", kind]) / args.rounds
        print(f"{kind:<8} other {other:7.0f}   this {this:7.0f}   this/other {this / other:5.2f}x")


if __name__ == "__main__":
    main()
