"""The analysis pipeline as an explicit list of steps (docs/analysis.md "Pipeline").

    local detectors  ->  Bedrock (optional, its own queue)  ->  score and complete

A step is a set of detectors built with their configuration, the per-analysis context they get, and where it
runs: `queue=None` runs inside the analysis task right after the step before it; a queue name hands the analysis
over to `analysis.step` on that queue (the analysis stays `running`, and the step is claimed on its own there).
Scoring and completion are not a step: analysis/services.py does them, once, after the last step that applies.

Nothing here writes: analysis/services.py runs the steps, stores their results and owns the lifecycle. To add a
step, define a `Step` below and put it in `PIPELINE` in the order it must run; see docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis import conf, selectors
from analysis.detectors import registry
from analysis.detectors.base import Detector, DetectorContext
from analysis.detectors.bedrock import BedrockDetector
from media.models import MediaItem


@dataclass(frozen=True)
class Step:
    name: str
    queue: str | None  # None: inside the analysis task; a name: handed off to its own task on that queue
    applies: Callable[[MediaItem], bool]  # does this item need the step at all
    detectors: Callable[[], list[Detector]]  # configured instances; may raise registry.DetectorUnavailable
    context: Callable[[], DetectorContext]
    records_calls: bool = False  # the detectors' evidence["calls"] are billed calls (BedrockCall rows)


def _always(media: MediaItem) -> bool:
    return True


def _local_detectors() -> list[Detector]:
    return registry.detectors(conf.detector_config(), optional=conf.optional_detectors())


def _local_context() -> DetectorContext:
    return DetectorContext(hash_banks=selectors.hash_bank_entries(), video_bank=selectors.video_bank_index())


def _bedrock_applies(media: MediaItem) -> bool:
    return media.kind in BedrockDetector.kinds and bool(conf.bedrock_models())


def _bedrock_detectors() -> list[Detector]:
    return [BedrockDetector(**conf.bedrock_detector_options())]


def _bedrock_context() -> DetectorContext:
    return DetectorContext(
        options={
            "bedrock_spent_today_usd": selectors.bedrock_spent_today_usd(),
            "bedrock_daily_budget_usd": conf.bedrock_daily_budget_usd(),
        }
    )


LOCAL = Step("local", None, _always, _local_detectors, _local_context)
# Bedrock calls are slow and billed: their own queue, so local analyses never wait behind them (docs/bedrock.md).
BEDROCK = Step("bedrock", "bedrock", _bedrock_applies, _bedrock_detectors, _bedrock_context, records_calls=True)

PIPELINE: tuple[Step, ...] = (LOCAL, BEDROCK)


def step_named(name: str) -> Step:
    for step in PIPELINE:
        if step.name == name:
            return step
    raise KeyError(f"no pipeline step named {name!r}")


def unavailable_detectors() -> dict[str, str]:
    """The required local detectors this process cannot load, name -> error (imports them all the first time)."""
    optional = conf.optional_detectors()
    return {s.name: s.error for s in registry.load_states() if not s.loaded and s.name not in optional}


def steps_after(step: Step) -> tuple[Step, ...]:
    return PIPELINE[PIPELINE.index(step) + 1 :]
