"""Error level analysis (ELA): does one region carry a different compression history from the rest?

The image is re-saved as JPEG at a known quality (90) and compared with itself. Regions that have already been
through a similar JPEG quantisation change little; a region pasted from another picture (another quality,
another 8x8 grid, or never compressed) changes more. Because error levels also grow with texture, each 16x16
block's error is compared with what blocks of the same texture show in this image (a robust, binned
texture -> error curve), and the resulting residuals are scaled by the image's own median/MAD. The score is
the strength of the most anomalous compact region (3x3 blocks). A colour-mapped heatmap of the error
(``ela_heatmap.png``) is attached for the moderator.

Limits: ELA reads compression history, so it is meaningful for JPEG. Lossless files (PNG, WebP lossless, TIFF,
BMP) are still analysed, because a decoded JPEG saved losslessly keeps its traces, but the probability is pulled
half-way to neutral in log-odds (evidence ``format_weight`` = 0.5). A whole-image re-save, resize or strong
recompression (quality < ~60) blurs the differences; saturated or flat regions show little error whatever their
history. Very large images are downscaled, which weakens the signal.
"""

from __future__ import annotations

import io
import math
from typing import Any

import cv2
import numpy as np
from PIL import Image

from analysis.detectors.base import (
    AbstainCode,
    Artifact,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

RESAVE_QUALITY = 90
BLOCK = 16
MIN_SIDE = 64
MAX_PIXELS = 16_000_000  # beyond this we downscale: the grid is lost but memory and time stay bounded
HEATMAP_MAX_SIDE = 1024
TEXTURE_BINS = 16
LOSSLESS_WEIGHT = 0.5
# Floor for the robust spread of log-error residuals. A file saved at about the re-save quality is nearly
# idempotent: most blocks show ~0 error, the MAD collapses and a few unstable blocks would look like huge
# outliers. 0.25 in log1p units means one "sigma" is at least a ~28 % change in error level.
SPREAD_FLOOR = 0.25
# Logistic map from the region z-score to a probability, set on skimage photos: untouched, resized and
# re-saved photos (single or double JPEG, q 75-95) reach z <= ~1.0; a never-compressed patch pasted into a
# q70-80 JPEG and saved at q95 reaches z ~ 2.3-3.3. z 1.5 -> 0.15, 2.2 -> 0.5, 3 -> 0.88.
Z_MIDPOINT = 2.2
Z_SLOPE = 2.5
P_MIN, P_MAX = 0.02, 0.98


class ElaDetector(Detector):
    """Error level analysis with texture-normalised block statistics and a heatmap artifact."""

    name = "ela"
    version = "1.0.1"
    time_budget_s = 10.0

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        loaded = _load(media)
        if isinstance(loaded, DetectorOutput):
            return loaded
        arr, fmt, scale = loaded
        h, w = arr.shape[:2]
        if min(h, w) < MIN_SIDE:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL, f"ELA needs at least {MIN_SIDE} px on each side.", width=w, height=h
            )

        error = _error_map(arr)
        stats = _region_statistics(error, arr)
        z = stats["region_z"]
        probability = _sigmoid((z - Z_MIDPOINT) * Z_SLOPE)
        lossless = fmt != "JPEG"
        format_weight = LOSSLESS_WEIGHT if lossless else 1.0
        if lossless:
            probability = _sigmoid(_logit(probability) * LOSSLESS_WEIGHT)
        probability = min(P_MAX, max(P_MIN, probability))

        evidence: dict[str, Any] = {
            "format": fmt,
            "resave_quality": RESAVE_QUALITY,
            "block_size": BLOCK,
            "analysed_scale": round(scale, 4),
            "format_weight": format_weight,
            **{k: v for k, v in stats.items() if k != "z_map"},
        }
        reasons = _reasons(probability, z, stats, lossless)
        heatmap = _heatmap(error)
        return DetectorOutput(
            status="ok",
            probability=probability,
            reasons=reasons,
            evidence=evidence,
            artifacts=[Artifact("ela_heatmap.png", "image/png", heatmap)],
        )


def _load(media: MediaInput) -> tuple[np.ndarray, str, float] | DetectorOutput:
    try:
        # Luminance only (chroma is subsampled and quantised coarsely anyway, and one channel is 3x cheaper),
        # from the analysis's shared decode: for a JPEG the decoder's own Y plane.
        decoded = media.decoded
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be decoded.", error=str(exc))
    arr = decoded.luma
    scale = 1.0
    h, w = arr.shape
    if w * h > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / (w * h))
        arr = cv2.resize(arr, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_LINEAR)
    return arr, decoded.format, scale


def _error_map(arr: np.ndarray) -> np.ndarray:
    """|image - JPEG(image, q=90)| on luminance, uint8."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=RESAVE_QUALITY)
    resaved = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return cv2.absdiff(arr, resaved)


def _block_means(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // BLOCK * BLOCK, a.shape[1] // BLOCK * BLOCK
    return cv2.resize(a[:h, :w].astype(np.float32), (w // BLOCK, h // BLOCK), interpolation=cv2.INTER_AREA)


def _region_statistics(error: np.ndarray, grey: np.ndarray) -> dict[str, Any]:
    ela = _block_means(error)
    texture = _block_means(cv2.absdiff(grey, cv2.blur(grey, (3, 3))))
    log_ela = np.log1p(ela)
    # Expected error for a block of this texture: the median error of blocks in the same texture quantile.
    edges = np.quantile(texture, np.linspace(0, 1, TEXTURE_BINS + 1))
    which = np.clip(np.searchsorted(edges, texture, side="right") - 1, 0, TEXTURE_BINS - 1)
    expected = np.zeros_like(log_ela)
    for b in range(TEXTURE_BINS):
        sel = which == b
        if sel.any():
            expected[sel] = np.median(log_ela[sel])
    residual = log_ela - expected
    centre = float(np.median(residual))
    mad = float(np.median(np.abs(residual - centre)))
    # Floor the spread: on very uniform images a tiny MAD would turn noise into huge z-scores.
    spread = max(1.4826 * mad, SPREAD_FLOOR)
    z = (residual - centre) / spread
    region = cv2.blur(z, (3, 3), borderType=cv2.BORDER_REFLECT) if min(z.shape) >= 3 else z
    flat = region.ravel()
    top = int(np.argmax(flat))
    top_y, top_x = divmod(top, region.shape[1])
    hot = region > 3.0
    return {
        "z_map": z,
        "region_z": float(flat[top]),
        "region_z_p99": float(np.percentile(flat, 99)),
        "hot_fraction": round(float(hot.mean()), 4),
        "hotspot_block": [int(top_x), int(top_y)],
        "hotspot_px": [int(top_x * BLOCK + BLOCK // 2), int(top_y * BLOCK + BLOCK // 2)],
        "baseline_median_error": round(float(np.median(ela)), 3),
        "baseline_mad_log_error": round(mad, 4),
        "blocks": [int(z.shape[1]), int(z.shape[0])],
    }


def _reasons(probability: float, z: float, stats: dict[str, Any], lossless: bool) -> list[Reason]:
    reasons: list[Reason] = []
    if probability >= 0.6:
        x, y = stats["hotspot_px"]
        reasons.append(
            Reason(
                "ela_hotspot",
                f"A region around ({x}, {y}) px has an error level far above blocks of similar texture "
                f"(robust z = {z:.1f}), as a pasted region with another compression history would.",
                Category.MANIPULATED,
            )
        )
    else:
        reasons.append(
            Reason(
                "ela_uniform",
                "Error levels are consistent across the image once texture is accounted for.",
                Category.INFO,
            )
        )
    if lossless:
        reasons.append(
            Reason(
                "ela_lossless_format",
                "The file is not a JPEG, so error levels say less and are weighted down.",
                Category.INFO,
            )
        )
    return reasons


# The inferno colour map as a 256-entry RGB palette (OpenCV's map is BGR).
_INFERNO_PALETTE: list[int] = [
    int(v)
    for v in cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), cv2.COLORMAP_INFERNO)[0, :, ::-1].ravel()
]


def _heatmap(error: np.ndarray) -> bytes:
    """Amplified, colour-mapped error (99.5th percentile -> full scale), same aspect, at most 1024 px a side.

    Written as a palette PNG (the colour map is the palette) at zlib level 1: the same colours as an RGB PNG
    at a third of the pixels to filter and compress, ~4 ms instead of ~30 ms for 1024x1024 on the shared box,
    and a smaller file (~30 KB against ~55 KB).
    """
    h, w = error.shape
    factor = min(1.0, HEATMAP_MAX_SIDE / max(h, w))
    small = (
        cv2.resize(error, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        if factor < 1.0
        else error
    )
    # The percentile from a 256-bin histogram: np.percentile partitions a million pixels for one number.
    counts = cv2.calcHist([np.ascontiguousarray(small)], [0], None, [256], [0, 256]).ravel()
    ceiling = max(float(np.searchsorted(np.cumsum(counts), 0.995 * small.size)), 1.0)
    amplified = cv2.convertScaleAbs(small, alpha=255.0 / ceiling)
    image = Image.frombytes("P", (amplified.shape[1], amplified.shape[0]), np.ascontiguousarray(amplified).tobytes())
    image.putpalette(_INFERNO_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    p = min(1 - 1e-6, max(1e-6, p))
    return math.log(p / (1 - p))
