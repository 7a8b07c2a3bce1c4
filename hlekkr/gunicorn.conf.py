"""gunicorn settings every Hlekkr web process uses (`gunicorn -c hlekkr/gunicorn.conf.py hlekkr.wsgi:application`):
`make run`, the systemd unit and the Procfile in docs/deployment.md. Command-line flags override these values.

The hooks keep Prometheus' multiprocess directory (PROMETHEUS_MULTIPROC_DIR, docs/deployment.md) honest: it is
emptied when the master starts (files of a previous run would be summed into this one's counters), and a worker
that exits has its live-gauge files removed (`mark_process_dead`) so dead workers do not pile up in scrapes.

`pre_request` hands each request to hlekkr.unread_body, so a refusal that leaves more of a body unread than it
may drain is answered with `Connection: close` (gunicorn ignores a Connection header set by the application).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hlekkr.unread_body import remember_gunicorn_request as pre_request  # noqa: F401

# Longer than typical client pool idle times, shorter than load balancers' idle timeouts (docs/deployment.md).
keepalive = 75
timeout = 120
threads = 4
accesslog = "-"


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    directory = _multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if _multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
