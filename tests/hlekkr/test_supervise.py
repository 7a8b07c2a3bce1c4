"""scripts/supervise.py keeps the worker of `make run` alive: a killed worker is started again and work resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = ROOT / "scripts" / "supervise.py"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_killed_child_is_started_again_and_sigterm_stops_both(tmp_path):
    marker = tmp_path / "starts"
    child = f"import time; open({str(marker)!r}, 'a').write('x'); time.sleep(60)"
    supervisor = subprocess.Popen(
        [sys.executable, str(SUPERVISE), "--max-backoff", "0.2", "--", sys.executable, "-c", child],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = _wait(lambda: _children(supervisor.pid))[0]
        _wait(lambda: marker.exists() and marker.read_text() == "x")
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: [p for p in _children(supervisor.pid) if p != first])[0]
        _wait(lambda: marker.read_text() == "xx")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=10) == 0
        assert not Path(f"/proc/{second}").exists() or "zombie" in Path(f"/proc/{second}/status").read_text()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    log = supervisor.stderr.read() if supervisor.stderr else ""
    assert "killed by SIGKILL; restarting" in log


def test_orphans_of_a_dead_child_are_killed_before_the_restart(tmp_path):
    """A SIGKILLed Celery main process leaves its pool processes behind; they must not run beside the new one."""
    pids = tmp_path / "pids"
    child = (
        "import os, subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pids)!r}, 'a').write(f'{{p.pid}}\\n'); time.sleep(60)"
    )
    supervisor = subprocess.Popen(
        [sys.executable, str(SUPERVISE), "--max-backoff", "0.2", "--", sys.executable, "-c", child],
        stderr=subprocess.DEVNULL,
    )
    try:
        main = _wait(lambda: _children(supervisor.pid))[0]
        orphan = int(_wait(lambda: pids.exists() and pids.read_text().split())[0])
        os.kill(main, signal.SIGKILL)
        _wait(lambda: len(pids.read_text().split()) == 2)  # restarted
        _wait(
            lambda: not Path(f"/proc/{orphan}").exists() or "Z" in Path(f"/proc/{orphan}/stat").read_text().split()[2]
        )
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.xdist_group("redis")
def test_a_supervised_celery_worker_killed_outright_comes_back_and_consumes(tmp_path, redis_url):
    """The `make run` arrangement: SIGKILL the worker and its pool; the next task is still consumed."""
    broker = redis_url.rsplit("/", 1)[0] + "/13"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
    env.update(
        {"DJANGO_SETTINGS_MODULE": "hlekkr.settings", "HLEKKR_VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": broker}
    )
    log = tmp_path / "worker.log"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            str(SUPERVISE),
            "--max-backoff",
            "1",
            "--",
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hlekkr",
            "worker",
            "--pool",
            "solo",
            "-Q",
            "default",
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: " ready." in log.read_text(), timeout=60)
        main = _children(supervisor.pid)[0]
        os.killpg(main, signal.SIGKILL)
        _wait(lambda: log.read_text().count(" ready.") == 2, timeout=60)
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from hlekkr.celery import ping; ping.delay()"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        _wait(lambda: "hlekkr.ping" in log.read_text() and "succeeded" in log.read_text(), timeout=60)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
