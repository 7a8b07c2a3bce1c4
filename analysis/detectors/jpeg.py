"""JPEG detector: quantisation tables, an estimated quality, and double-compression evidence.

* The quantisation tables Pillow reads are matched against the IJG standard tables scaled for every quality
  1-100; the best fit is the estimated quality, and whether the fit is exact (libjpeg-style software) or not
  (camera-specific tables) is reported.
* Double compression: the decoded luminance is cut into the same 8x8 grid and DCT-transformed; each
  low-frequency AC coefficient, divided by the step of the *last* quantisation table, is close to an integer.
  A single compression leaves a smooth, Laplacian-like histogram of those integers. A first compression at a
  different quality leaves periodic empty or over-full bins (Popescu & Farid; Lukas & Fridrich). We measure how
  far each bin departs from the mean of its neighbours, averaged over well-populated bins and coefficients.

Limits: needs a JPEG (others abstain with ``unsupported_format``) with luminance (CMYK abstains). Very high
final quality (steps of 1) hides the histogram; a resize or crop between the two saves moves the grid and
hides the first compression; the first save at a quality close to the second leaves little trace. Double
compression means "re-saved", which is common and innocent, so even strong evidence stays moderate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

# IJG (libjpeg) Annex K tables in natural (row-major) order, as Pillow reports them.
STD_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip
STD_CHROMA = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
     47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32,
    dtype=np.float64,
)  # fmt: skip

# Low-frequency AC positions (row, col) in the 8x8 block: best populated, most informative.
AC_POSITIONS = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0)]
MIN_BIN_COUNT = 30  # neighbour pairs with fewer samples are too noisy to judge
MAX_BIN = 24
MAX_SIDE_BLOCKS = 160  # analyse at most 1280x1280 px (centre crop) at full resolution: enough statistics
# Irregularity of single-compressed photos sits around 0.0-0.08 (the Laplacian's own curvature); photos
# recompressed at a different quality reach 0.3-1+.
IRREGULARITY_MIDPOINT = 0.2
IRREGULARITY_SLOPE = 25.0
P_MIN, P_MAX = 0.02, 0.9  # re-saving is common and innocent: cap what this alone can say


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


# The IJG tables for qualities 1-100, one row each, computed once.
_QUALITIES = np.arange(1, 101)
_LUMA_TABLES = np.stack([ijg_table(STD_LUMA, int(q)) for q in _QUALITIES])
_CHROMA_TABLES = np.stack([ijg_table(STD_CHROMA, int(q)) for q in _QUALITIES])


def estimate_quality(tables: dict[int, list[int]]) -> tuple[int, bool, float]:
    """Best IJG quality for the tables: (quality, exact match, mean absolute error per entry)."""
    luma = np.asarray(tables.get(0, []), dtype=np.float64)
    chroma = np.asarray(tables.get(1, []), dtype=np.float64) if 1 in tables else None
    if luma.size != 64:
        return (50, False, math.inf)
    errors = np.abs(_LUMA_TABLES - luma).sum(axis=1)
    n = 64
    if chroma is not None and chroma.size == 64:
        errors = errors + np.abs(_CHROMA_TABLES - chroma).sum(axis=1)
        n += 64
    best = int(np.argmin(errors))  # the first (lowest) quality among equals, as the loop it replaces chose
    return int(_QUALITIES[best]), bool(errors[best] == 0), float(errors[best]) / n


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    m[0, :] = np.sqrt(1 / 8)
    return m.astype(np.float32)


DCT = _dct_matrix()
# Column n is the 8x8 DCT basis image of AC_POSITIONS[n], flattened row-major like a block.
AC_BASIS = np.stack([np.outer(DCT[r], DCT[c]).ravel() for r, c in AC_POSITIONS], axis=1).astype(np.float32)


class JpegDetector(Detector):
    """Quantisation-table quality estimate and DCT-histogram double-compression evidence."""

    name = "jpeg"
    version = "1.0.0"
    time_budget_s = 5.0

    def applies(self, media: MediaInput) -> DetectorOutput | None:
        base = super().applies(media)
        if base is not None:
            return base
        if media.mime and media.mime not in {"image/jpeg", "image/jpg", "image/pjpeg"}:
            return DetectorOutput.abstain(AbstainCode.UNSUPPORTED_FORMAT, "Only JPEG files have quantisation tables.")
        return None

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            im = media.open_image()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be opened.", error=str(exc))
        if im.format != "JPEG":
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT, "Only JPEG files have quantisation tables.", format=im.format
            )
        tables: dict[int, list[int]] = {int(k): list(v) for k, v in getattr(im, "quantization", {}).items()}
        if not tables or len(tables.get(0, [])) != 64:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The JPEG has no usable quantisation table.")
        quality, exact, fit_error = estimate_quality(tables)
        evidence: dict[str, Any] = {
            "estimated_quality": quality,
            "standard_tables": exact,
            "table_fit_error": round(fit_error, 3),
            "luma_table": tables[0],
            "mode": im.mode,
        }
        if im.mode not in {"L", "RGB", "YCbCr"}:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT,
                f"Double-compression analysis needs luminance; this JPEG is {im.mode}.",
                **evidence,
            )
        try:
            # The analysis's shared decode: for a JPEG it is the decoder's Y plane, exactly what was quantised.
            y = media.decoded.luma
        except (OSError, SyntaxError, ValueError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The JPEG is truncated or corrupt.", error=str(exc))
        if min(y.shape) < 64:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL, "Too few 8x8 blocks for histogram statistics.", **evidence
            )

        q_luma = np.asarray(tables[0], dtype=np.float32).reshape(8, 8)
        irregularity, per_coefficient = _histogram_irregularity(y, q_luma)
        evidence["double_compression_irregularity"] = round(irregularity, 4)
        evidence["per_coefficient"] = per_coefficient
        if irregularity < 0:  # nothing measurable (steps of 1, flat image)
            reasons = [Reason("jpeg_not_measurable", "The quantisation is too fine to read history.", Category.INFO)]
            return DetectorOutput(status="ok", probability=None, reasons=reasons, evidence=evidence)

        p = 1 / (1 + math.exp(-(irregularity - IRREGULARITY_MIDPOINT) * IRREGULARITY_SLOPE))
        p = min(P_MAX, max(P_MIN, p))
        reasons = [
            Reason(
                "jpeg_quality",
                f"Estimated JPEG quality {quality} ({'standard' if exact else 'custom'} tables).",
                Category.INFO,
            )
        ]
        if p >= 0.5:
            reasons.append(
                Reason(
                    "double_compression",
                    "The DCT coefficient histograms show the periodic gaps of an earlier JPEG compression at "
                    "another quality: the image was decoded and saved again.",
                    Category.EDITED,
                )
            )
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence)


def _histogram_irregularity(y: np.ndarray, q_luma: np.ndarray) -> tuple[float, dict[str, float]]:
    h, w = y.shape[0] // 8, y.shape[1] // 8
    # Centre crop in whole blocks (keeps the grid aligned) to bound time and memory on huge images.
    bh, bw = min(h, MAX_SIDE_BLOCKS), min(w, MAX_SIDE_BLOCKS)
    oy, ox = (h - bh) // 2 * 8, (w - bw) // 2 * 8
    blocks = y[oy : oy + bh * 8, ox : ox + bw * 8].astype(np.float32) - 128.0
    blocks = blocks.reshape(bh, 8, bw, 8).transpose(0, 2, 1, 3).reshape(bh * bw, 64)
    # Only the AC_POSITIONS coefficients are used: one (blocks x 64) @ (64 x 10) product with their DCT basis
    # images instead of a full 8x8 transform of every block (~4x faster, the same coefficients).
    coeffs = blocks @ AC_BASIS  # (blocks, len(AC_POSITIONS))
    scores: dict[str, float] = {}
    weights: list[float] = []
    values: list[float] = []
    for index, (r, c) in enumerate(AC_POSITIONS):
        step = float(q_luma[r, c])
        if step < 2:
            continue  # a step of 1 leaves no gaps to find
        k = np.rint(np.abs(coeffs[:, index]) / step).astype(np.int64)
        hist = np.bincount(k, minlength=MAX_BIN + 2)[: MAX_BIN + 2].astype(np.float64)
        deviations = []
        counts = []
        for b in range(2, MAX_BIN + 1):  # skip bins 0/1: dominated by the zero peak
            neighbours = (hist[b - 1] + hist[b + 1]) / 2
            if neighbours < MIN_BIN_COUNT:
                continue
            # Relative departure from the neighbours' mean, less ~1.5 sigma of Poisson counting noise, so
            # that small images are not penalised for sparse histograms.
            deviations.append(max(0.0, abs(hist[b] - neighbours) / neighbours - 1.5 / math.sqrt(neighbours)))
            counts.append(neighbours)
        if len(deviations) >= 3:
            score = float(np.average(deviations, weights=np.sqrt(counts)))
            scores[f"{r}{c}"] = round(score, 4)
            values.append(score)
            weights.append(float(np.sqrt(np.sum(counts))))
    if not values:
        return -1.0, scores
    return float(np.average(values, weights=weights)), scores
