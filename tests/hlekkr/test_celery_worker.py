"""A real worker process starts and consumes on the embedded transport, and on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hlekkr.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_celery_is_configured_for_safe_redelivery():
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_time_limit < 3600 and conf.task_soft_time_limit < conf.task_time_limit


def _worker_consumes(env_extra: dict[str, str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "hlekkr.settings", "HLEKKR_VAR_DIR": str(tmp_path), **env_extra})
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hlekkr", "worker", "--pool", "solo", "-Q", "default", "-l", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from hlekkr.celery import ping; ping.delay()"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        output = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            output = log.read_text()
            if "hlekkr.ping" in output and "succeeded" in output:
                return output
            time.sleep(0.3)
        raise AssertionError(f"worker never ran the task:\n{output[-2000:]}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.slow
def test_a_worker_consumes_from_the_embedded_filesystem_transport(tmp_path):
    _worker_consumes({"CELERY_BROKER_URL": "filesystem://"}, tmp_path)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.xdist_group("redis")
def test_a_worker_consumes_from_redis(tmp_path, redis_url):
    broker = redis_url.rsplit("/", 1)[0] + "/14"
    _worker_consumes({"CELERY_BROKER_URL": broker}, tmp_path)


def test_beat_collection_skips_a_missing_beat_module_but_not_a_broken_one(tmp_path, monkeypatch):
    import hlekkr.celery as hlekkr_celery

    (tmp_path / "hk_broken_beat.py").write_text("import hk_no_such_dependency\nSCHEDULE = {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class Conf:
        beat_schedule: dict = {}

    class Sender:
        conf = Conf()

    monkeypatch.setattr(hlekkr_celery, "BEAT_MODULES", ("hk_absent_beat",))
    hlekkr_celery._collect_beat_schedules(Sender())
    assert Sender.conf.beat_schedule == {}

    monkeypatch.setattr(hlekkr_celery, "BEAT_MODULES", ("hk_absent_beat", "hk_broken_beat"))
    with pytest.raises(ModuleNotFoundError, match="hk_no_such_dependency"):
        hlekkr_celery._collect_beat_schedules(Sender())
