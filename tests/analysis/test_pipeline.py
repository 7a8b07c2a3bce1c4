"""analysis.pipeline.run_detectors: detectors run two at a time, results come back in order, and each detector
keeps its own budget, error and timeout semantics. Events, not clocks, decide every outcome here."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import pytest

from analysis.detectors.base import AbstainCode, Detector, DetectorContext, DetectorOutput, MediaInput
from analysis.pipeline import Heartbeat, run_detectors


def media(tmp_path: Path) -> MediaInput:
    path = tmp_path / "item.bin"
    path.write_bytes(b"not really an image")
    return MediaInput(path=path, kind="image", mime="image/jpeg", size=19)


class _Waits(Detector):
    """Returns once `gate` is set (or after `wait_s`, reporting whether the gate opened)."""

    version: ClassVar[str] = "0"
    time_budget_s: ClassVar[float] = 20.0

    def __init__(self, name: str, gate: threading.Event, opens: threading.Event | None = None, wait_s: float = 20):
        self.name = name  # type: ignore[misc]
        self.gate, self.opens, self.wait_s = gate, opens, wait_s

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        if self.opens is not None:
            self.opens.set()
        opened = self.gate.wait(self.wait_s)
        return DetectorOutput(status="ok", probability=0.5, evidence={"gate_opened": opened})


class _Raises(Detector):
    name: ClassVar[str] = "raises"
    version: ClassVar[str] = "0"

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise ValueError("bad pixels")


class _Hangs(Detector):
    name: ClassVar[str] = "hangs"
    version: ClassVar[str] = "0"
    time_budget_s: ClassVar[float] = 0.2
    release = threading.Event()

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        _Hangs.release.wait(30)
        return DetectorOutput(status="ok", probability=0.9)


class _Quick(Detector):
    version: ClassVar[str] = "0"

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        return DetectorOutput(status="ok", probability=0.1)


class _VideoOnly(_Quick):
    kinds: ClassVar[frozenset[str]] = frozenset({"video"})


def test_two_detectors_run_at_the_same_time(tmp_path: Path) -> None:
    # The first waits for the second to have started: run one after the other, it would wait in vain.
    second_started = threading.Event()
    first = _Waits("first", gate=second_started)
    second = _Waits("second", gate=threading.Event(), opens=second_started, wait_s=0)

    runs = list(run_detectors([first, second], media(tmp_path), DetectorContext()))

    assert [r.name for r in runs] == ["first", "second"]
    assert runs[0].output.evidence == {"gate_opened": True}


def test_results_come_back_in_the_detectors_order_when_a_later_one_finishes_first(tmp_path: Path) -> None:
    slow_may_finish = threading.Event()
    slow = _Waits("slow", gate=slow_may_finish)

    class _Quick2(_Quick):
        def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
            slow_may_finish.set()  # the slow one finishes only after this one ran
            return super().run(media, context)

    runs = list(run_detectors([slow, _Quick2("quick"), _VideoOnly("video_only")], media(tmp_path), DetectorContext()))

    assert [r.name for r in runs] == ["slow", "quick", "video_only"]
    assert [r.output.status for r in runs] == ["ok", "ok", "abstained"]
    assert runs[2].output.abstain_code == AbstainCode.UNSUPPORTED_KIND


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_an_exception_is_an_error_result_and_a_hang_a_timeout_while_the_others_finish(
    tmp_path: Path, threads: int
) -> None:
    _Hangs.release.clear()
    try:
        detectors = [_Hangs(), _Raises(), _Quick("after_both"), _Quick("last")]
        runs = list(run_detectors(detectors, media(tmp_path), DetectorContext(), threads=threads))
    finally:
        _Hangs.release.set()

    by_name = {r.name: r.output for r in runs}
    assert [r.name for r in runs] == ["hangs", "raises", "after_both", "last"]
    assert by_name["hangs"].status == "abstained" and by_name["hangs"].abstain_code == AbstainCode.TIMEOUT
    assert by_name["hangs"].evidence == {"budget_s": 0.2}
    assert by_name["raises"].status == "error"
    assert by_name["raises"].evidence == {"exception": "ValueError", "message": "bad pixels"}
    assert by_name["after_both"].status == by_name["last"].status == "ok"


def test_the_heartbeat_beats_in_the_calling_thread_while_detectors_run(tmp_path: Path) -> None:
    # The heartbeat renews a database lease: it must run where the database connection lives.
    beats: list[threading.Thread] = []
    released = threading.Event()

    def beat() -> None:
        beats.append(threading.current_thread())
        released.set()  # the detector below finishes after the first beat

    runs = list(
        run_detectors(
            [_Waits("waits", gate=released), _Quick("quick")],
            media(tmp_path),
            DetectorContext(),
            heartbeat=Heartbeat(beat, every=0.01),
        )
    )

    assert runs[0].output.evidence == {"gate_opened": True}
    assert beats and set(beats) == {threading.current_thread()}


def test_the_heartbeats_exception_stops_the_run(tmp_path: Path) -> None:
    class TakenOver(Exception):
        pass

    def beat() -> None:
        raise TakenOver

    with pytest.raises(TakenOver):
        list(
            run_detectors(
                [_Waits("waits", gate=threading.Event(), wait_s=5), _Quick("quick")],
                media(tmp_path),
                DetectorContext(),
                heartbeat=Heartbeat(beat, every=0.01),
            )
        )
