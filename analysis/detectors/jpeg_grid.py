"""JPEG grid: a region whose 8x8 blocking grid is out of step with the rest of the image (a pasted JPEG piece).

Every JPEG save leaves faint discontinuities at the borders of its 8x8 blocks. When a piece of another JPEG
is pasted into a picture, its own blocking comes with it, shifted by wherever it landed (63 of 64 offsets
are off the picture's grid), and a later re-save of the whole composite adds a new, aligned grid on top
without erasing the old one. ELA and the DCT histograms read the *last* save, which a global re-save makes
uniform; the grid phase survives it (the "blocking artifact grid" idea of Li, Yuan and Yu, 2009).

How: the absolute first differences across columns (and rows) are taken, their median over the rows of a
64 px strip (a block border runs through every row, an object edge through few), and averaged per column
phase (x mod 8) in 64x64 windows every 32 px. The image's own grid phase is the phase that wins in most
windows. A window's score is its strongest *other* phase divided by the median phase, and it must be off-grid
both across columns and across rows (the lower of the two), because a real pasted block is shifted in both
directions while a single straight edge (a pole, a horizon) only makes one.

Limits: needs a visible global grid (the median window's grid phase at least ``MIN_GRID_STRENGTH`` above
the other phases): never-compressed images, images resized after the last save and very high qualities show
none, and the detector then reports ``no_grid`` without a probability. A piece pasted at an offset that is a
multiple of 8 in either direction, a donor that was never a JPEG, or a donor compressed more lightly than the
final save leaves nothing to find. Strongly periodic scenes (brick, text) can put a peak at another phase;
probabilities therefore stay below ``P_MAX``. Images over ``CROP`` px a side are analysed on a grid-aligned
centre crop, because any resampling would destroy the grids.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

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

WINDOW = 64
STRIDE = 32
MIN_SIDE = 2 * WINDOW
CROP = 1536
# The grid of the last save must stand out by this ratio in the median window, or there is nothing to be
# out of step with (skimage photos saved once as JPEG q75-95: 1.07-2.5; PNG-like images without a grid ~1.0).
MIN_GRID_STRENGTH = 1.06
# Set on skimage photos (evaluate_detectors' sets and the contract pair): authentic, resized and re-saved
# photos reach an off-grid ratio of at most ~1.9; donor pieces from a q60 JPEG pasted and re-saved at q90, or
# the contract's q95 -> q75 composite, reach 2.3-3.8. 1.9 -> 0.12, 2.4 -> 0.5, 3.2 -> 0.96 before the cap.
RATIO_MIDPOINT = 2.4
RATIO_SLOPE = 4.0
P_MIN, P_MAX = 0.02, 0.9
REPORT_AT = 0.6


def phase_means(luma: np.ndarray, axis: int) -> np.ndarray:
    """(rows, cols, 8): per window, the mean over each column phase of the row-median |difference|.

    ``axis`` 1 measures borders between columns (vertical grid lines); 0 between rows, returned in the same
    window layout.
    """
    g = luma.astype(np.float32)
    if axis == 0:
        g = g.T
    diff = np.abs(np.diff(g, axis=1))  # diff[:, j] is the step between column j and j + 1
    height, width = diff.shape
    n_rows = (height - WINDOW) // STRIDE + 1
    n_cols = (width - WINDOW) // STRIDE + 1
    medians = np.stack([np.median(diff[r * STRIDE : r * STRIDE + WINDOW], axis=0) for r in range(n_rows)])
    phase = np.arange(width) % 8
    onehot = (phase[:, None] == np.arange(8)[None, :]).astype(np.float32)  # (width, 8)
    per_phase = medians[:, :, None] * onehot[None, :, :]  # (n_rows, width, 8)
    cumulative = np.concatenate([np.zeros((n_rows, 1, 8), np.float32), np.cumsum(per_phase, axis=1)], axis=1)
    starts = np.arange(n_cols) * STRIDE
    sums = cumulative[:, starts + WINDOW, :] - cumulative[:, starts, :]
    means = sums / (WINDOW / 8)
    return means if axis == 1 else means.transpose(1, 0, 2)


def grid_analysis(luma: np.ndarray) -> dict[str, Any]:
    """The global grid phase and strength, and each window's off-grid ratio (see the module docstring)."""
    across_cols = phase_means(luma, 1)
    across_rows = phase_means(luma, 0)
    rows = min(across_cols.shape[0], across_rows.shape[0])
    cols = min(across_cols.shape[1], across_rows.shape[1])
    across_cols, across_rows = across_cols[:rows, :cols], across_rows[:rows, :cols]
    ratios, phases, strengths = [], [], []
    for means in (across_cols, across_rows):
        typical = np.median(means.reshape(-1, 8), axis=0)
        grid = int(np.argmax(typical))
        others = np.delete(typical, grid)
        strengths.append(float(typical[grid] / max(float(np.median(others)), 1e-6)))
        phases.append(grid)
        # +0.5 grey levels keeps flat windows (all differences ~0) from turning rounding into huge ratios.
        base = np.median(means, axis=2) + 0.5
        ratios.append(np.delete(means, grid, axis=2).max(axis=2) / base)
    off_grid = np.minimum(ratios[0], ratios[1])
    top = int(np.argmax(off_grid))
    top_row, top_col = divmod(top, off_grid.shape[1])
    return {
        "grid_phase": phases,
        "grid_strength": min(strengths),
        "off_grid": off_grid,
        "max_ratio": float(off_grid.ravel()[top]),
        "top_window": (top_col * STRIDE, top_row * STRIDE),
    }


class JpegGridDetector(Detector):
    """Blocking-grid misalignment: a region carrying another JPEG's 8x8 grid, surviving a global re-save."""

    name: ClassVar[str] = "jpeg_grid"
    version: ClassVar[str] = "1.0"
    time_budget_s: ClassVar[float] = 5.0

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            decoded = media.decoded
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be decoded.", error=str(exc))
        luma = decoded.luma
        height, width = luma.shape
        if min(height, width) < MIN_SIDE:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL, f"Needs at least {MIN_SIDE} px a side to compare block grids."
            )
        # Grid-aligned centre crop: offsets are multiples of 8, so phases keep their meaning.
        top, left = max(0, (height - CROP) // 2) // 8 * 8, max(0, (width - CROP) // 2) // 8 * 8
        crop = luma[top : top + CROP, left : left + CROP]
        result = grid_analysis(crop)
        strength, ratio = result["grid_strength"], result["max_ratio"]
        x, y = result["top_window"]
        evidence: dict[str, Any] = {
            "format": decoded.format,
            "crop": [int(left), int(top), int(crop.shape[1]), int(crop.shape[0])],
            "grid_phase": result["grid_phase"],
            "grid_strength": round(strength, 3),
            "max_off_grid_ratio": round(ratio, 3),
            "region_px": [int(left + x), int(top + y), WINDOW, WINDOW],
            "windows": [int(result["off_grid"].shape[1]), int(result["off_grid"].shape[0])],
        }
        if not math.isfinite(strength) or strength < MIN_GRID_STRENGTH:
            return DetectorOutput(
                status="ok",
                probability=None,
                reasons=[
                    Reason(
                        "no_grid",
                        "No JPEG block grid is visible, so there is nothing for a region to be out of step with.",
                        Category.INFO,
                    )
                ],
                evidence=evidence,
            )
        probability = 1 / (1 + math.exp(-(ratio - RATIO_MIDPOINT) * RATIO_SLOPE))
        probability = min(P_MAX, max(P_MIN, probability))
        if probability >= REPORT_AT:
            reasons = [
                Reason(
                    "misaligned_grid",
                    f"The region at ({left + x}, {top + y}) px carries an 8x8 JPEG block grid out of step with the "
                    f"rest of the image (ratio {ratio:.1f}), as a piece pasted from another JPEG does.",
                    Category.MANIPULATED,
                )
            ]
        else:
            reasons = [Reason("aligned_grid", "The JPEG block grid is consistent across the image.", Category.INFO)]
        return DetectorOutput(status="ok", probability=probability, reasons=reasons, evidence=evidence)
