"""The contract every detector follows.

A detector is a small class with a name, a version, the media kinds it looks at and a time budget.
`applies()` says why it abstains before any heavy work (``None`` means it will run); `run()` returns a
`DetectorOutput`. Detectors are pure: they read the file at `MediaInput.path` and the `DetectorContext`
the pipeline hands them, and never touch the ORM, the network or storage. The pipeline turns an exception
into an ``error`` result, so a detector may raise on genuinely unexpected input, but anything it can
recognise (corrupt file, no frames, no samples) should be an abstention with a typed reason.
"""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from PIL import Image

Status = Literal["ok", "abstained", "error"]


class Category(enum.StrEnum):
    """What a reason speaks to. Users must not confuse the three kinds of finding."""

    EDITED = "edited"  # software touched it (crop, resize, re-save) - not evidence of deception by itself
    MANIPULATED = "manipulated"  # content altered: splice, copy-move, local edits
    GENERATED = "generated"  # AI-made: generator metadata, C2PA trainedAlgorithmicMedia, model evidence
    AUTHENTIC = "authentic"  # evidence for authenticity: camera metadata, trusted provenance, banked original
    INFO = "info"  # a fact worth showing that points nowhere


class Decisive(enum.StrEnum):
    """Evidence strong enough to be applied on top of the weighted combination (see docs/scoring.md)."""

    AI_DECLARED_TRUSTED = "ai_declared_trusted"
    AI_DECLARED_UNTRUSTED = "ai_declared_untrusted"
    KNOWN_FAKE = "known_fake"
    PROVENANCE_TAMPERED = "provenance_tampered"
    TRUSTED_AUTHENTIC = "trusted_authentic"
    KNOWN_AUTHENTIC = "known_authentic"


class AbstainCode(enum.StrEnum):
    """Typed reasons for not judging an item."""

    UNSUPPORTED_KIND = "unsupported_kind"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNREADABLE = "unreadable"  # corrupt or truncated file
    TOO_SMALL = "too_small"
    NO_DATA = "no_data"  # e.g. no metadata, no manifest
    NO_FRAMES = "no_frames"
    NO_SAMPLES = "no_samples"
    LOW_QUALITY = "low_quality"
    NOT_CONFIGURED = "not_configured"
    BUDGET_EXHAUSTED = "budget_exhausted"
    UPSTREAM_FAILED = "upstream_failed"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Reason:
    code: str  # machine-readable, stable: e.g. "generator_signature", "ela_hotspot"
    text: str  # one plain sentence a moderator can read
    category: Category = Category.INFO

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text, "category": str(self.category)}


@dataclass(frozen=True)
class Artifact:
    """A file a detector produced (heatmap, mask). The pipeline stores it beside the media."""

    name: str  # e.g. "ela_heatmap.png"
    content_type: str
    data: bytes


@dataclass
class DetectorOutput:
    status: Status
    probability: float | None = None  # probability of manipulation/generation in [0, 1], None when not judged
    reasons: list[Reason] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable
    artifacts: list[Artifact] = field(default_factory=list)
    decisive: list[Decisive] = field(default_factory=list)
    abstain_code: AbstainCode | None = None

    @classmethod
    def abstain(cls, code: AbstainCode, text: str, **evidence: Any) -> DetectorOutput:
        return cls(
            status="abstained",
            abstain_code=code,
            reasons=[Reason(code=str(code), text=text, category=Category.INFO)],
            evidence=dict(evidence),
        )

    def __post_init__(self) -> None:
        if self.probability is not None:
            if not 0.0 <= self.probability <= 1.0:
                raise ValueError(f"probability {self.probability} outside [0, 1]")
            self.probability = float(self.probability)


@dataclass(frozen=True)
class HashBankEntry:
    bank: str  # bank name
    bank_kind: Literal["known_fake", "known_authentic"]
    hash_hex: str  # 64 hex characters (256-bit PDQ)
    label: str = ""


@dataclass
class DetectorContext:
    """What the pipeline hands every detector besides the file. Loaded from the database by the caller."""

    hash_banks: list[HashBankEntry] = field(default_factory=list)
    c2pa_trust_anchors_pem: str | None = None  # PEM bundle; None = no trust list configured
    pdq_max_distance: int = 31
    pdq_min_quality: int = 50
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MediaInput:
    """The item under analysis as a local file. `kind` is image, video or audio; `mime` is the sniffed type."""

    path: Path
    kind: Literal["image", "video", "audio"]
    mime: str
    size: int
    sha256: str = ""
    filename: str = ""

    @cached_property
    def data(self) -> bytes:
        return self.path.read_bytes()

    def open_image(self) -> Image.Image:
        """A fresh PIL image (lazy; callers call .load() or convert())."""
        return Image.open(io.BytesIO(self.data))


class Detector:
    """Base class. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    version: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({"image"})
    time_budget_s: ClassVar[float] = 10.0

    def applies(self, media: MediaInput) -> DetectorOutput | None:
        """None when the detector will run; otherwise an abstained output with the typed reason."""
        if media.kind not in self.kinds:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_KIND, f"{self.name} does not examine {media.kind} files."
            )
        return None

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise NotImplementedError
