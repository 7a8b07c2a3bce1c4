"""A detector that overran its budget keeps its thread (Python cannot kill it): the next detector gives it a grace
of its own budget to finish, so overrunning detectors' memory does not pile up side by side on a loaded worker."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

from analysis.detectors.base import Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.pipeline import run_detectors


class Overrun(Detector):
    name = "overrun"
    version = "1"
    time_budget_s: ClassVar[float] = 0.1

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        time.sleep(self.seconds)
        return DetectorOutput(status="ok", probability=0.5)


class Witness(Detector):
    """Records whether an overrunning detector thread was still alive when it started."""

    name = "witness"
    version = "1"
    time_budget_s: ClassVar[float] = 1.0

    def __init__(self) -> None:
        self.overrun_alive_at_start: bool | None = None

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        self.overrun_alive_at_start = any(t.name == "detector-overrun" for t in threading.enumerate())
        return DetectorOutput(status="ok", probability=0.5)


def media(tmp_path: Path) -> MediaInput:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"x")
    return MediaInput(path=path, kind="image", mime="image/jpeg", size=1)


def test_the_next_detector_waits_for_an_overrunning_one_to_finish(tmp_path: Path) -> None:
    witness = Witness()
    runs = list(run_detectors([Overrun(0.15), witness], media(tmp_path), DetectorContext()))
    assert runs[0].output.status == "abstained" and runs[0].output.reasons[0].code == "timeout"
    assert witness.overrun_alive_at_start is False
    assert runs[1].output.status == "ok"


def test_a_thread_that_never_returns_delays_the_next_detector_by_at_most_its_own_budget(tmp_path: Path) -> None:
    witness = Witness()
    started = time.monotonic()
    runs = list(run_detectors([Overrun(3.0), witness], media(tmp_path), DetectorContext()))
    took = time.monotonic() - started
    assert witness.overrun_alive_at_start is True  # waited out the overrun's 0.1 s grace, then went ahead
    assert runs[1].output.status == "ok"
    assert took < 2.0
