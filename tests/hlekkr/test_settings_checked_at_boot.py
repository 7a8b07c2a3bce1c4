"""Configuration is read and checked at start-up: a bad value refuses to start, wherever it was set."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from analysis import conf as analysis_conf
from hlekkr.env import DECLARED_BOUNDS, check_bounds
from media import conf as media_conf

ROOT = Path(__file__).resolve().parent.parent.parent


def _start(
    tmp_path: Path, settings_module: str = "hlekkr.settings_test", **env: str
) -> subprocess.CompletedProcess[str]:
    """Start Django the way every process does (django.setup(): settings, then every AppConfig.ready())."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HLEKKR_")},
        "DJANGO_SETTINGS_MODULE": settings_module,
        "HLEKKR_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_pdq_distance_in_the_environment_refuses_to_start(tmp_path: Path) -> None:
    started = _start(tmp_path, HLEKKR_PDQ_MAX_DISTANCE="500")
    assert started.returncode != 0 and "started" not in started.stdout
    assert "ImproperlyConfigured: HLEKKR_PDQ_MAX_DISTANCE must be <= 128, got 500" in started.stderr
    garbled = _start(tmp_path, HLEKKR_PDQ_MAX_DISTANCE="thirty")
    assert garbled.returncode != 0 and "HLEKKR_PDQ_MAX_DISTANCE must be an integer" in garbled.stderr


def test_a_bad_pdq_distance_written_in_a_settings_module_refuses_to_start_too(tmp_path: Path) -> None:
    (tmp_path / "bad_settings.py").write_text(
        "from hlekkr.settings_test import *  # noqa\nHLEKKR_PDQ_MAX_DISTANCE = -3\n"
    )
    started = _start(tmp_path, settings_module="bad_settings")
    assert started.returncode != 0
    assert "HLEKKR_PDQ_MAX_DISTANCE must be >= 0, got -3" in started.stderr


def test_good_settings_start() -> None:
    # The suite's own process started with them; the bounds hold for every declared value.
    from django.conf import settings

    check_bounds(settings)
    assert {"HLEKKR_PDQ_MAX_DISTANCE", "HLEKKR_ANALYSIS_LEASE_SECONDS", "HLEKKR_MAX_IMAGE_PIXELS"} <= set(
        DECLARED_BOUNDS
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HLEKKR_PDQ_MAX_DISTANCE", 129, "must be <= 128"),
        ("HLEKKR_PDQ_MIN_QUALITY", "50", "must be an integer"),
        ("HLEKKR_PDQ_MIN_QUALITY", True, "must be an integer"),
        ("HLEKKR_DETECTOR_BUDGET_SCALE", float("nan"), "must be a finite number"),
        ("HLEKKR_DETECTOR_BUDGET_SCALE", 0, "must be >= 0.01"),
        ("HLEKKR_DETECTOR_THREADS", 0, "must be >= 1"),
        ("HLEKKR_MAX_DIRECT_UPLOAD_BYTES", 0, "must be >= 1"),
    ],
)
def test_a_value_set_in_settings_gets_the_bounds_of_its_environment_reader(name: str, value: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"{name} {message}"):
        check_bounds(SimpleNamespace(**{name: value}))


def test_bedrock_models_that_do_not_parse_refuse_to_start(settings: Any) -> None:
    settings.HLEKKR_BEDROCK_MODELS = "model-a,model-b"  # not the JSON list docs/bedrock.md describes
    with pytest.raises(ImproperlyConfigured, match="HLEKKR_BEDROCK_MODELS must be a JSON list"):
        analysis_conf.check()


def test_an_unknown_optional_detector_refuses_to_start(settings: Any) -> None:
    settings.HLEKKR_OPTIONAL_DETECTORS = ["copy_mvoe"]
    with pytest.raises(ImproperlyConfigured, match="copy_mvoe"):
        analysis_conf.check()


def test_a_lease_longer_than_half_the_soft_time_limit_refuses_to_start(settings: Any) -> None:
    settings.HLEKKR_ANALYSIS_LEASE_SECONDS = settings.CELERY_TASK_SOFT_TIME_LIMIT
    with pytest.raises(ImproperlyConfigured, match="HLEKKR_ANALYSIS_LEASE_SECONDS"):
        analysis_conf.check()


def test_a_malformed_per_role_upload_limit_refuses_to_start(settings: Any) -> None:
    settings.HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE = "client=lots"
    with pytest.raises(ImproperlyConfigured, match="HLEKKR_MAX_MULTIPART_BYTES_BY_ROLE"):
        media_conf.check()


# Files that may read the process environment themselves: the settings, the entry points that choose the settings
# module, and tools that are not the app (benchmarks, examples). Prometheus's own PROMETHEUS_MULTIPROC_DIR is read
# by prometheus_client; hlekkr/ops/metrics.py looks at it to choose the registry.
ENV_READERS_ALLOWED = {
    "hlekkr/settings.py",
    "hlekkr/settings_test.py",
    "hlekkr/env.py",
    "hlekkr/celery.py",
    "hlekkr/wsgi.py",
    "manage.py",
    "hlekkr/ops/metrics.py",
    "hlekkr/gunicorn.conf.py",  # gunicorn's own configuration, read before Django starts
    "hlekkr/accounts/management/commands/ensure_demo_users.py",  # a demo password for the embedded run
}
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_networks", "env_secret"}


def test_only_the_settings_read_the_environment() -> None:
    offenders = []
    for package in sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in {"tests", "bench"}):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ENV_READERS_ALLOWED or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                    offenders.append(f"{relative}:{node.lineno} os.{node.attr}")
                if isinstance(node, ast.ImportFrom) and node.module == "hlekkr.env":
                    used = {alias.name for alias in node.names} & ENV_HELPERS
                    if used:
                        offenders.append(f"{relative}:{node.lineno} imports {sorted(used)}")
    assert offenders == []
