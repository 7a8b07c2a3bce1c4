#!/usr/bin/env python3
"""Keep one command running: restart it whenever it exits, until we are told to stop.

`make run` starts the Celery worker through this, so a worker that dies (SIGKILL, the OOM killer, kombu giving
up during a broker outage) comes back by itself within seconds, as systemd's `Restart=always` does in production
(docs/deployment.md). Usage:

    python scripts/supervise.py [--name worker] -- celery -A hlekkr worker ...

* The child runs in a process group of its own; when it dies, whatever is left of the group (a pool process of
  a SIGKILLed Celery main process) is killed too, so the replacement never runs beside orphans.
* Restarts back off from 1 s to 30 s while the child keeps dying young; a child that ran for a minute resets it.
* SIGTERM/SIGINT are passed on to the child (Celery's warm shutdown), then the supervisor exits with it.
Standard library only: it must run before anything else works.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0


def _log(name: str, message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervise[{name}]: {message}", file=sys.stderr, flush=True)


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def supervise(command: list[str], *, name: str, max_backoff: float = MAX_BACKOFF_S) -> int:
    stopping: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backoff = min(MIN_BACKOFF_S, max_backoff)
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command, start_new_session=True)
        _log(name, f"started pid {child.pid}")
        returncode = child.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)  # orphans of the child's group
        if stopping:
            _log(name, f"stopped ({_describe(returncode)})")
            return 0 if returncode in (0, -stopping[0]) else returncode
        if time.monotonic() - started >= HEALTHY_AFTER_S:
            backoff = min(MIN_BACKOFF_S, max_backoff)
        _log(name, f"pid {child.pid} {_describe(returncode)}; restarting in {backoff:.0f} s")
        deadline = time.monotonic() + backoff
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return 0
        backoff = min(backoff * 2, max_backoff)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="worker", help="label for the log lines")
    parser.add_argument(
        "--max-backoff", type=float, default=MAX_BACKOFF_S, help="longest wait between restarts, seconds (30)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to keep running")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to supervise after --")
    return supervise(command, name=args.name, max_backoff=args.max_backoff)


if __name__ == "__main__":
    sys.exit(main())
