"""The Celery app. Settings come from Django settings (CELERY_*); each app contributes its periodic tasks
through a `beat.py` module with a SCHEDULE dict, collected here so no app imports another."""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")
# One BLAS thread per worker process, set before numpy is first imported (OpenBLAS reads it once, at load): like
# OpenCV's pool below, BLAS threads only fight the other worker processes for the cores. Measured on the shared
# 2-core machine: noise_residual's 162x162 eigh took 1.2 s with the default pool and 60 ms with one thread, the
# whole noise_residual detector 660 -> 63 ms, jpeg_local 656 -> 249 ms, copy_move 1182 -> 645 ms.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

app = Celery("hlekkr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_consumer_steps(celery_app: Celery) -> None:
    # Re-send work whose send failed during a broker outage as soon as the consumer reconnects (hlekkr/ops/broker.py).
    from hlekkr.ops.broker import BrokerReturnStep

    celery_app.steps["consumer"].add(BrokerReturnStep)


_add_consumer_steps(app)

BEAT_MODULES = (
    "hlekkr.audit.beat",
    "hlekkr.ops.beat",
    "media.beat",
    "analysis.beat",
    "review.beat",
    "batches.beat",
    "ratelimit.beat",
    "hlekkr.webhooks.beat",
)


@app.on_after_finalize.connect
def _collect_beat_schedules(sender: Celery, **kwargs: Any) -> None:
    schedule: dict[str, Any] = dict(sender.conf.beat_schedule or {})
    for module_name in BEAT_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the beat module exists but is broken: its periodic tasks must not vanish silently
            continue
        schedule.update(getattr(module, "SCHEDULE", {}))
    sender.conf.beat_schedule = schedule


@signals.before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    from hlekkr.ops.logging import request_id_var

    if headers is not None:
        headers.setdefault("hlekkr_request_id", request_id_var.get())


@signals.task_prerun.connect
def _receive_request_id(task: Any = None, **kwargs: Any) -> None:
    from hlekkr.ops.logging import request_id_var

    request_id = getattr(task.request, "hlekkr_request_id", None) if task is not None else None
    # An eager task runs inside its caller (no message, no header): it keeps the caller's id.
    current = request_id_var.get()
    token = request_id_var.set(
        request_id or (current if current != "-" else f"task-{getattr(task.request, 'id', '-')}")
    )
    if task is not None:
        task.request.hlekkr_request_id_token = token


@signals.task_postrun.connect
def _forget_request_id(task: Any = None, **kwargs: Any) -> None:
    """Restore the id the thread had before the task, so an eager task never relabels its caller's lines."""
    from hlekkr.ops.logging import request_id_var

    token = getattr(task.request, "hlekkr_request_id_token", None) if task is not None else None
    if token is not None:
        # ValueError: set in another context (not expected for one task run); never fail the task over it.
        with contextlib.suppress(ValueError):
            request_id_var.reset(token)


@app.task(name="hlekkr.ping", ignore_result=True)
def ping() -> str:
    """A no-op used by the worker smoke test and by operators to see a worker consume from a queue."""
    return "pong"


@signals.worker_process_init.connect
def _single_threaded_native_libraries(**kwargs: Any) -> None:
    """Each worker process is one unit of parallelism: OpenCV's own thread pool would only fight the other
    worker processes for the same cores (measured: faces ran 2x slower in wall time than in CPU time)."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv is a pinned dependency
        return
    cv2.setNumThreads(1)
