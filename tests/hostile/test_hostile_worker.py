"""The hostile corpus straight into the detectors, in a process of its own (tests/hostile/worker_probe.py): every
detector answers with a result or a typed abstention — never an `error` — and the process stays under 1 GB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import CORPUS

from analysis.detectors.base import AbstainCode

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile_worker")]
PROBE = Path(__file__).with_name("worker_probe.py")
MAX_RSS_MB = 1024


@pytest.fixture(scope="module")
def probe() -> list[dict]:
    done = subprocess.run([sys.executable, str(PROBE)], capture_output=True, text=True, timeout=600, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_every_file_gets_a_result_or_a_typed_abstention_from_every_detector(probe: list[dict]) -> None:
    lines = {line["name"]: line for line in probe if "name" in line}
    assert sorted(lines) == sorted(entry.name for entry in CORPUS)
    typed = {str(code) for code in AbstainCode}
    for name, line in lines.items():
        for detector, (status, code) in line["results"].items():
            assert status in ("ok", "abstained"), f"{name}: {detector} said {status} ({code})"
            assert code, f"{name}: {detector} gave no reason code"
            if status == "abstained":
                assert code in typed or code.startswith(("c2pa_", "unsupported")), f"{name}: {detector} {code}"


def test_the_worker_stays_under_1_gb(probe: list[dict]) -> None:
    summary = probe[-1]
    assert summary["done"] == len(CORPUS)
    assert summary["peak_rss_mb"] < MAX_RSS_MB, summary
