"""Which local detectors the pipeline runs, in what order, and whether each one could be loaded.

Order matters only for reading: cheap metadata and provenance facts first, then pixel forensics, then the
informational face count, then the container-level video and audio detectors. Each detector decides for itself
whether it applies to a kind (`Detector.kinds` / `applies`); the pipeline records an abstention for the rest, so
every analysis has one row per registered detector.

A detector whose module fails to import (a broken OpenCV or c2pa install) is not skipped quietly: its load state
records the error, `/health/ready` and `manage.py doctor` report it, and the pipeline refuses to score without
it (analysis/steps.py), because a missing detector would otherwise only show up as a quietly smaller score.

To add a detector: write `analysis/detectors/<name>.py` (a `Detector` subclass, see base.py), append it to
`REGISTERED` below, give it a weight in a new ScoringPolicy version, and document it in docs/analysis.md.
Nothing here touches the app: no ORM, no settings (configuration arrives as a `DetectorConfig`).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from functools import lru_cache

from analysis.detectors.base import Detector, DetectorConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorSpec:
    name: str  # the detector's `name` (checked when it loads)
    module: str
    class_name: str


REGISTERED: tuple[DetectorSpec, ...] = (
    DetectorSpec("metadata", "analysis.detectors.metadata", "MetadataDetector"),
    DetectorSpec("provenance", "analysis.detectors.provenance", "ProvenanceDetector"),
    DetectorSpec("known_content", "analysis.detectors.known_content", "KnownContentDetector"),
    DetectorSpec("ela", "analysis.detectors.ela", "ElaDetector"),
    DetectorSpec("jpeg", "analysis.detectors.jpeg", "JpegDetector"),
    DetectorSpec("spectral", "analysis.detectors.spectral", "SpectralDetector"),
    DetectorSpec("jpeg_grid", "analysis.detectors.jpeg_grid", "JpegGridDetector"),
    DetectorSpec("copy_move", "analysis.detectors.copy_move", "CopyMoveDetector"),
    DetectorSpec("jpeg_local", "analysis.detectors.jpeg_local", "JpegLocalDetector"),
    DetectorSpec("double_jpeg", "analysis.detectors.double_jpeg", "DoubleJpegDetector"),
    DetectorSpec("noise_residual", "analysis.detectors.noise_residual", "NoiseResidualDetector"),
    DetectorSpec("generated", "analysis.detectors.generated", "GeneratedDetector"),
    DetectorSpec("faces", "analysis.detectors.faces", "FacesDetector"),
    DetectorSpec("video", "analysis.detectors.video", "VideoDetector"),
    DetectorSpec("audio", "analysis.detectors.audio", "AudioDetector"),
)


@dataclass(frozen=True)
class LoadState:
    """Whether one registered detector could be imported in this process, and if not, why."""

    name: str
    loaded: bool
    error: str = ""  # "ImportError: libGL.so.1: cannot open shared object file", empty when loaded
    cls: type[Detector] | None = None


class DetectorUnavailable(Exception):
    """A detector the pipeline needs could not be loaded in this process."""

    def __init__(self, states: list[LoadState]):
        self.states = states
        names = ", ".join(f"{s.name} ({s.error})" for s in states)
        super().__init__(f"detector(s) could not be loaded: {names}")


def load(spec: DetectorSpec) -> LoadState:
    """Import one detector class; any failure (not only ImportError: a module can raise anything at import)
    becomes a recorded error rather than an exception."""
    try:
        cls = getattr(importlib.import_module(spec.module), spec.class_name)
    except Exception as exc:
        logger.critical(
            "detector %s (%s.%s) could not be loaded", spec.name, spec.module, spec.class_name, exc_info=True
        )
        return LoadState(spec.name, False, f"{type(exc).__name__}: {str(exc)[:200]}")
    if not (isinstance(cls, type) and issubclass(cls, Detector)) or getattr(cls, "name", None) != spec.name:
        return LoadState(spec.name, False, f"{spec.module}.{spec.class_name} is not the {spec.name!r} Detector")
    return LoadState(spec.name, True, "", cls)


@lru_cache(maxsize=1)
def load_states() -> tuple[LoadState, ...]:
    """Every registered detector's load state, imported once per process."""
    return tuple(load(spec) for spec in REGISTERED)


def detector_classes() -> tuple[type[Detector], ...]:
    """The classes that loaded (for listings: docs, the evidence bundle, tests)."""
    return tuple(s.cls for s in load_states() if s.cls is not None)


def detectors(config: DetectorConfig, *, optional: frozenset[str] = frozenset()) -> list[Detector]:
    """Fresh, configured instances for one analysis. Raises DetectorUnavailable when a detector that is not
    listed in `optional` failed to load: the analysis must not be scored without it."""
    missing = [s for s in load_states() if not s.loaded and s.name not in optional]
    if missing:
        raise DetectorUnavailable(missing)
    return [cls.configured(config) for cls in detector_classes()]
