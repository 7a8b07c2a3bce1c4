"""Component checks shared by /health/ready, the status page and `manage.py doctor`.

Each check is cheap, bounded by a short timeout and never raises: it returns a ComponentStatus. Details never
carry secrets (no URLs with credentials, no keys): only scheme, host and plain facts.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

OK = "ok"
DOWN = "down"
DEGRADED = "degraded"
OFF = "off"
UNKNOWN = "unknown"

HEARTBEAT_STALE_AFTER = timedelta(minutes=2)
DEFAULT_WORKER_QUEUES = ("interactive", "batch", "bedrock", "webhooks", "maintenance", "default")


@dataclass
class ComponentStatus:
    name: str
    status: str
    latency_ms: float
    detail: str
    required: bool = True
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status in (OK, OFF)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("name")
        if not out["data"]:
            out.pop("data")
        return out


def _timed(name: str, required: bool, probe: Callable[[], tuple[str, str, dict[str, Any]]]) -> ComponentStatus:
    started = time.perf_counter()
    try:
        status, detail, data = probe()
    except Exception as exc:  # a check reports failure; it must never take the probe endpoint down
        status, detail, data = DOWN, f"{type(exc).__name__}: {_safe_error(exc)}", {}
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ComponentStatus(name=name, status=status, latency_ms=latency, detail=detail, required=required, data=data)


def _safe_error(exc: BaseException) -> str:
    """An exception message with anything URL-shaped reduced to scheme://host, cut short."""
    words = []
    for word in str(exc).split():
        if "://" in word:
            word = _redact_url(word)
        words.append(word)
    return " ".join(words)[:200]


def _redact_url(url: str) -> str:
    try:
        parsed = urlparse(url)
        host = parsed.hostname or ""
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        return "<url>"
    return f"{parsed.scheme}://{host}{port}"


# --- the components ---------------------------------------------------------------------------------------
def check_database() -> ComponentStatus:
    def probe() -> tuple[str, str, dict[str, Any]]:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return OK, f"{connection.vendor}", {}

    return _timed("database", True, probe)


def check_cache() -> ComponentStatus:
    def probe() -> tuple[str, str, dict[str, Any]]:
        key = f"hlekkr:ops:probe:{uuid.uuid4().hex}"
        value = uuid.uuid4().hex
        cache.set(key, value, timeout=30)
        got = cache.get(key)
        cache.delete(key)
        backend = str(settings.CACHES["default"]["BACKEND"]).rsplit(".", 1)[-1]
        if got != value:
            return DOWN, f"{backend}: a value written could not be read back", {}
        return OK, backend, {}

    return _timed("cache", True, probe)


def broker_url() -> str:
    from hlekkr.celery import app

    return str(app.conf.broker_url or settings.CELERY_BROKER_URL)


def check_broker(timeout: float = 2.0) -> ComponentStatus:
    def probe() -> tuple[str, str, dict[str, Any]]:
        url = broker_url()
        scheme = url.split("://", 1)[0]
        if scheme == "filesystem":
            # The embedded transport is folders on disk: up when they exist and we can write to them.
            options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
            folders = {str(options.get(k)) for k in ("data_folder_in", "data_folder_out") if options.get(k)}
            for folder in folders:
                if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                    return DOWN, f"filesystem transport folder is missing or not writable: {folder}", {}
            return OK, "filesystem transport (embedded)", {}
        if scheme == "memory":
            return OK, "in-memory transport (tests)", {}
        from kombu import Connection

        with Connection(url, connect_timeout=timeout, transport_options={"max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return OK, _redact_url(url), {}

    return _timed("broker", True, probe)


def check_storage() -> ComponentStatus:
    def probe() -> tuple[str, str, dict[str, Any]]:
        name = f"_ops/probe-{uuid.uuid4().hex}.txt"
        payload = uuid.uuid4().hex.encode()
        saved = default_storage.save(name, ContentFile(payload))
        try:
            with default_storage.open(saved, "rb") as handle:
                read_back = handle.read()
        finally:
            default_storage.delete(saved)
        backend = type(default_storage._wrapped if hasattr(default_storage, "_wrapped") else default_storage)
        where = getattr(settings, "AWS_STORAGE_BUCKET_NAME", "") or "local filesystem"
        if read_back != payload:
            return DOWN, f"{backend.__name__} ({where}): probe object read back different bytes", {}
        return OK, f"{backend.__name__} ({where}): write, read, delete", {}

    return _timed("storage", True, probe)


# The last storage probe of this process: (monotonic time, the backend it probed, the result).
_storage_probe: tuple[float, object, ComponentStatus] | None = None
_storage_probe_lock = threading.Lock()


def storage_probe_ttl_seconds() -> float:
    return float(settings.HLEKKR_READINESS_STORAGE_TTL)


def check_storage_cached() -> ComponentStatus:
    """Readiness' storage check: the real write, read and delete at most once per HLEKKR_READINESS_STORAGE_TTL
    seconds (15) per process. A load balancer probing every node every few seconds would otherwise cost a
    storage round trip (and an S3 PUT) per probe; a storage outage still shows within the TTL. Doctor calls
    check_storage() itself, every time."""
    global _storage_probe
    backend = default_storage._wrapped if hasattr(default_storage, "_wrapped") else default_storage
    now = time.monotonic()
    with _storage_probe_lock:
        cached = _storage_probe
        if cached is not None and cached[1] is backend and now - cached[0] < storage_probe_ttl_seconds():
            age = now - cached[0]
            return replace(cached[2], detail=f"{cached[2].detail} (probed {age:.0f} s ago)")
        result = check_storage()
        _storage_probe = (time.monotonic(), backend, result)
        return result


def forget_storage_probe() -> None:
    global _storage_probe
    with _storage_probe_lock:
        _storage_probe = None


def expected_worker_queues() -> list[str]:
    return list(getattr(settings, "HLEKKR_WORKER_QUEUES", None) or DEFAULT_WORKER_QUEUES)


def worker_queue_state() -> dict[str, dict[str, Any]]:
    """queue -> {last_seen (iso or None), fresh (bool), workers (fresh hostnames)} for every expected queue."""
    from django.db.models import Max

    from hlekkr.ops.models import WorkerHeartbeat

    now = timezone.now()
    newest = dict(WorkerHeartbeat.objects.values_list("queue").annotate(last=Max("last_seen")))
    fresh_rows = WorkerHeartbeat.objects.filter(last_seen__gte=now - HEARTBEAT_STALE_AFTER)
    workers: dict[str, list[str]] = {}
    for queue, hostname in fresh_rows.values_list("queue", "hostname"):
        workers.setdefault(queue, []).append(hostname)
    state = {}
    for queue in expected_worker_queues():
        last = newest.get(queue)
        state[queue] = {
            "last_seen": last.isoformat() if last else None,
            "fresh": bool(last and now - last <= HEARTBEAT_STALE_AFTER),
            "workers": len(workers.get(queue, [])),
        }
    return state


def check_workers() -> ComponentStatus:
    """Not required for readiness: a web node with no workers still accepts uploads (work queues up, and the
    worker_heartbeat alert fires). Pulling every web node out of the load balancer would turn a worker outage
    into a full API outage."""

    def probe() -> tuple[str, str, dict[str, Any]]:
        state = worker_queue_state()
        missing = [q for q, s in state.items() if not s["fresh"]]
        never = [q for q, s in state.items() if s["last_seen"] is None]
        if not missing:
            return (
                OK,
                f"heartbeats on all {len(state)} queues within {HEARTBEAT_STALE_AFTER.seconds // 60} min",
                {"queues": state},
            )
        if len(never) == len(state):
            return UNKNOWN, "no worker has reported a heartbeat yet", {"queues": state}
        status = DOWN if len(missing) == len(state) else DEGRADED
        return status, f"no fresh heartbeat on: {', '.join(missing)}", {"queues": state}

    return _timed("workers", False, probe)


def bedrock_models() -> list[str]:
    """The configured Bedrock model ids (the JSON list was checked at start-up by analysis.conf)."""
    from analysis import conf

    return [m.model_id for m in conf.bedrock_models()]


def check_bedrock_config() -> ComponentStatus:
    """Configuration only: readiness never calls AWS (doctor does, when Bedrock is configured)."""

    def probe() -> tuple[str, str, dict[str, Any]]:
        models = bedrock_models()
        if not models:
            return OFF, "not configured (local detectors only)", {}
        return OK, f"configured: {len(models)} model(s)", {"models": models}

    return _timed("bedrock", False, probe)


def check_detectors(*, local: bool | None = None) -> ComponentStatus:
    """Whether every required detector can be loaded (analysis/detectors/registry.py); one that cannot is an
    error, not a smaller score. `local`: this process's own load states (a worker, `doctor`), importing the
    detectors if need be. Otherwise - by default in a process that has not loaded them, i.e. a web process, which
    never runs detectors and should not pay ~100 MB and seconds to import OpenCV, PyAV and c2pa for a probe - what
    the analysis workers report with their heartbeats."""

    def probe() -> tuple[str, str, dict[str, Any]]:
        from analysis.detectors import registry

        use_local = local if local is not None else registry.load_states.cache_info().currsize > 0
        return _detectors_here() if use_local else _detectors_on_workers()

    return _timed("detectors", True, probe)


def _detectors_here() -> tuple[str, str, dict[str, Any]]:
    from analysis import conf
    from analysis.detectors import registry

    optional = conf.optional_detectors()
    states = registry.load_states()
    data = {
        s.name: {"loaded": s.loaded, "required": s.name not in optional, **({"error": s.error} if s.error else {})}
        for s in states
    }
    broken = [s.name for s in states if not s.loaded and s.name not in optional]
    skipped = [s.name for s in states if not s.loaded and s.name in optional]
    if broken:
        return DOWN, f"required detector(s) not loaded: {', '.join(broken)}", {"detectors": data}
    if skipped:
        return DEGRADED, f"optional detector(s) not loaded: {', '.join(skipped)}", {"detectors": data}
    return OK, f"all {len(states)} detectors loaded", {"detectors": data}


def _detectors_on_workers() -> tuple[str, str, dict[str, Any]]:
    from analysis.models import AnalysisQueue
    from hlekkr.ops.models import WorkerHeartbeat

    rows = WorkerHeartbeat.objects.filter(
        queue__in=AnalysisQueue.values,
        last_seen__gte=timezone.now() - HEARTBEAT_STALE_AFTER,
        detector_errors__isnull=False,
    ).values_list("hostname", "detector_errors")
    reports: dict[str, dict[str, str]] = {}
    for hostname, errors in rows:
        reports.setdefault(hostname, {}).update(errors or {})
    broken = {hostname: errors for hostname, errors in reports.items() if errors}
    if broken:
        names = "; ".join(f"{hostname}: {', '.join(sorted(errors))}" for hostname, errors in sorted(broken.items()))
        return DOWN, f"analysis worker(s) cannot load required detectors: {names}", {"workers": broken}
    if not reports:
        return OK, "no analysis worker has reported its detectors yet", {}
    return OK, f"{len(reports)} analysis worker(s) loaded every required detector", {}


READINESS_CHECKS: tuple[Callable[[], ComponentStatus], ...] = (
    check_database,
    check_cache,
    check_broker,
    check_storage_cached,
    check_workers,
    check_detectors,
    check_bedrock_config,
)


def readiness() -> tuple[bool, dict[str, ComponentStatus]]:
    """(ready, components): ready is False when any required component is not healthy."""
    components = {}
    for check in READINESS_CHECKS:
        result = check()
        components[result.name] = result
    ready = all(c.healthy for c in components.values() if c.required)
    return ready, components
