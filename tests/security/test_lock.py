"""requirements.lock holds every pin of requirements*.txt (CI also checks it against the installed packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_holds_every_pinned_requirement() -> None:
    spec = importlib.util.spec_from_file_location("lock_requirements", ROOT / "scripts" / "lock_requirements.py")
    assert spec is not None and spec.loader is not None
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    stale = lock.stale_pins()
    assert not stale, f"{stale}: run `python scripts/lock_requirements.py` after changing a requirement"


def test_every_locked_distribution_has_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    assert text.count("==") == text.count("--hash=sha256:") > 100
