#!/usr/bin/env python3
"""Run the fault experiments of tests/reliability/ at larger counts and print what each found.

    .venv/bin/python scripts/fault_trials.py                  # 100 trials per worker fault, 30 s broker outage
    .venv/bin/python scripts/fault_trials.py --trials 20 -k pool

Each run starts its own PostgreSQL (initdb under a temporary directory, /usr/lib/postgresql/*/bin) and two Redis
servers on spare loopback ports, gunicorn, two supervised Celery workers and beat; it never touches a shared
server. The same code runs in CI with bounded counts (HLEKKR_FAULT_TRIALS=20, a 10 s broker outage); the README's
"Reliability" table lists the figures and the command that printed each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100, help="faults per worker experiment (100)")
    parser.add_argument("--broker-outage", type=float, default=30.0, help="seconds the broker is away (30)")
    parser.add_argument("--database-outage", type=float, default=20.0, help="seconds PostgreSQL is away (20)")
    parser.add_argument("-k", default="", help="pytest -k expression to pick experiments (pool, worker, term, ...)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' directory and logs for reading")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "HLEKKR_FAULT_TRIALS": str(args.trials),
        "HLEKKR_FAULT_BROKER_OUTAGE_S": str(args.broker_outage),
        "HLEKKR_FAULT_DATABASE_OUTAGE_S": str(args.database_outage),
    }
    if args.keep:
        env["HLEKKR_KEEP_FAULT_DIR"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-s",
        "-p",
        "no:randomly",
        "-m",
        "reliability",
        "tests/reliability",
        "-o",
        "addopts=-p no:cacheprovider",
    ]
    if args.k:
        command += ["-k", args.k]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
