"""The contract every detector follows.

A detector is a small class with a name, a version, the media kinds it looks at and a time budget.
`applies()` says why it abstains before any heavy work (``None`` means it will run); `run()` returns a
`DetectorOutput`. Detectors are pure: their configuration arrives when they are constructed (`configured()`
builds one from the `DetectorConfig` the app reads from settings), they read the file at `MediaInput.path` and
the per-analysis data in `DetectorContext`, and they import nothing from the app (no ORM, no settings, no
storage; tests/test_architecture.py holds them to it). The pipeline turns an exception
into an ``error`` result, so a detector may raise on genuinely unexpected input, but anything it can
recognise (corrupt file, no frames, no samples) should be an abstention with a typed reason.
"""

from __future__ import annotations

import enum
import io
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from PIL import Image

Status = Literal["ok", "abstained", "error"]
_T = TypeVar("_T")


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
    AI_DECLARED_METADATA = "ai_declared_metadata"  # a generator's signature or IPTC source type in metadata
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
    """Per-analysis data the pipeline hands every detector besides the file, loaded from the database by the
    caller (hash banks change while the process runs; configuration does not, see DetectorConfig)."""

    hash_banks: list[HashBankEntry] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    video_bank: Any = None  # video_signature.VideoIndex of the active banks' videos (None: none loaded)


@dataclass(frozen=True)
class DetectorConfig:
    """The infrastructure configuration of the local detectors, read from settings once by `analysis.conf` and
    handed to each detector's `configured()`. A detector that needs a new knob adds a field here (with the
    default it uses when constructed bare) and reads it in its own `configured()`."""

    pdq_max_distance: int = 31
    pdq_min_quality: int = 50
    c2pa_trust_anchors_pem: str | None = None  # PEM bundle; None = no trust list configured


@dataclass(frozen=True)
class DecodedImage:
    """One decode of an image, shared by every image detector of an analysis (see `MediaInput.decoded`).

    `luma` is the luminance plane at full stored resolution (no EXIF rotation applied: forensics must see the
    pixel grid the encoder saw). For a JPEG it is the decoder's own Y plane, exactly what was quantised, with no
    colour conversion; for other formats it is Pillow's ITU-R 601 luminance (high bit depths stretched to 8
    bits). The array is read-only: detectors that need to modify it copy it.
    """

    format: str  # Pillow's format name ("JPEG", "PNG", ...), "" if unknown
    mode: str  # the mode the file was stored in ("RGB", "L", "RGBA", "I;16", ...)
    width: int
    height: int
    luma: np.ndarray  # (height, width) uint8, read-only
    orientation: int = 1  # EXIF orientation tag (1 = upright); detectors that look for upright content use it
    # The (height, width, 3) uint8 RGB pixels, read-only, when the luminance was computed from them (colour images
    # other than JPEG): a second decode of a lossless file costs ~30 ms at 1024 px, and the colour checks need
    # them. None for JPEG (its Y plane needs no colour conversion), greyscale and high-bit-depth images.
    rgb: np.ndarray | None = field(default=None, repr=False, compare=False)

    def upright(self, array: np.ndarray) -> np.ndarray:
        """`array` (same grid as `luma`, any scale) turned the way the EXIF orientation says."""
        return _apply_orientation(array, self.orientation)


# What decoding a damaged or hostile file raises (Pillow's own errors, and a pixel count past the bomb limit).
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def decode_image(data: bytes) -> DecodedImage:
    """Decode once to a luminance plane; raises what Pillow raises for corrupt or unsupported data."""
    with Image.open(io.BytesIO(data)) as image:
        fmt = image.format or ""
        mode = image.mode
        try:
            orientation = int(image.getexif().get(0x0112, 1) or 1)
        except Exception:  # a broken EXIF block must not hide the pixels
            orientation = 1
        if fmt == "JPEG" and mode in {"RGB", "YCbCr"}:
            image.draft("L", image.size)  # the Y plane straight from the decoder, no colour conversion
        image.load()
        rgb = None
        if image.mode in {"I", "I;16", "I;16B", "I;16L", "F"}:
            a = np.asarray(image, dtype=np.float32)
            lo, hi = float(a.min()), float(a.max())
            luma = ((a - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
        elif image.mode == "L":
            luma = np.asarray(image, dtype=np.uint8)
        else:
            colour = image if image.mode == "RGB" else image.convert("RGB")  # no second full-size copy for RGB
            luma = np.asarray(colour.convert("L"), dtype=np.uint8)
            rgb = np.ascontiguousarray(np.asarray(colour, dtype=np.uint8))
            rgb.flags.writeable = False
            del colour
        width, height = image.size
    luma = np.ascontiguousarray(luma)
    luma.flags.writeable = False
    return DecodedImage(fmt, mode, width, height, luma, orientation if 1 <= orientation <= 8 else 1, rgb)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    # The EXIF orientation values, as ImageOps.exif_transpose applies them.
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    if method is None:
        return array
    return np.asarray(Image.fromarray(np.ascontiguousarray(array)).transpose(method))


@dataclass
class MediaInput:
    """The item under analysis as a local file. `kind` is image, video or audio; `mime` is the sniffed type."""

    path: Path
    kind: Literal["image", "video", "audio"]
    mime: str
    size: int
    sha256: str = ""
    filename: str = ""
    # The pipeline runs detectors in parallel threads (analysis/pipeline.py): the shared reads below are filled
    # under this lock, so two detectors asking at once wait for one decode instead of doing two. (Not
    # functools.cached_property: from Python 3.12 it has no lock at all.)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _shared: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _shared_locks: dict[Hashable, threading.Lock] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def data(self) -> bytes:
        """The file's bytes, read once."""
        with self._lock:
            return self._read_data()

    def _read_data(self) -> bytes:
        if "data" not in self._cache:
            self._cache["data"] = self.path.read_bytes()
        data: bytes = self._cache["data"]
        return data

    @property
    def decoded(self) -> DecodedImage:
        """The image decoded once per analysis and shared by the image detectors (raises like Pillow does; a
        failed decode is not remembered, so each detector gets its own exception).

        Decoding is usually the largest single cost of a pixel detector, and six of them look at the same
        luminance; before this each one decoded the file again.
        """
        with self._lock:
            if "decoded" not in self._cache:
                self._cache["decoded"] = decode_image(self._read_data())
            decoded: DecodedImage = self._cache["decoded"]
            return decoded

    def shared(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """`compute()`, done once per analysis for `key` and handed to every detector that asks for the same key.

        For intermediate results several detectors derive from the same pixels (jpeg_local and double_jpeg both
        take the block DCT of the same grid-aligned crop): the key must name everything the value depends on
        (e.g. ``("block_dct", max_side, oy, ox)``). A second caller waits for the first one's result rather than
        computing it again; other keys are not held up. An array result is made read-only, as `luma` is, so no
        detector can change what the others see. An exception is not remembered: the next caller computes again.
        """
        with self._lock:
            if key in self._shared:
                value: _T = self._shared[key]
                return value
            lock = self._shared_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._shared:
                value = self._shared[key]
                return value
            value = compute()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            self._shared[key] = value
            return value

    def open_image(self) -> Image.Image:
        """A fresh PIL image (lazy; callers call .load() or convert())."""
        return Image.open(io.BytesIO(self.data))


class Detector:
    """Base class. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    version: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({"image"})
    time_budget_s: ClassVar[float] = 10.0

    @classmethod
    def configured(cls, config: DetectorConfig) -> Detector:
        """An instance set up from `config`. Detectors without knobs take none; the others override this."""
        return cls()

    def applies(self, media: MediaInput) -> DetectorOutput | None:
        """None when the detector will run; otherwise an abstained output with the typed reason."""
        if media.kind not in self.kinds:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_KIND, f"{self.name} does not examine {media.kind} files."
            )
        return None

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise NotImplementedError


class PixelDetector(Detector):
    """An image detector that reads the shared luminance plane. Decoding once and the two abstentions every such
    detector needs (an unreadable file, an image too small for the method) live here; subclasses say how small is
    too small (`min_side`) and look at the pixels in `examine`."""

    def min_side(self) -> int:
        raise NotImplementedError

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            luma = media.decoded.luma
        except DECODE_ERRORS as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be decoded.", error=str(exc))
        height, width = luma.shape
        need = self.min_side()
        if min(height, width) < need:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL, f"{self.name} needs at least {need} px a side.", width=width, height=height
            )
        return self.examine(luma, media, context)

    def examine(self, luma: np.ndarray, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        raise NotImplementedError


def grid_centre_crop(luma: np.ndarray, max_side: int) -> tuple[np.ndarray, int, int]:
    """The centre of `luma`, at most `max_side` a side, cut on the 8x8 grid so JPEG traces stay where the encoder
    put them (resampling instead would erase them); with the crop's top and left in `luma`."""
    height, width = luma.shape
    top, left = max(0, (height - max_side) // 2) // 8 * 8, max(0, (width - max_side) // 2) // 8 * 8
    return luma[top : top + max_side, left : left + max_side], top, left
