"""Spectral detector: resampling (up-sampling) artefacts in the frequency domain.

Interpolation makes some pixels exact linear combinations of their neighbours at a periodic rhythm. Following
Kirchner (2008), a fixed linear predictor's residual is turned into a "p-map" (large where the pixel is well
predicted), averaged along rows and columns, and its 1-D spectra are searched for sharp periodic peaks
relative to the local spectral background. Peaks at multiples of 1/8 cycle/px are ignored when the image
carries an 8x8 JPEG grid, because block compression produces exactly those. Both axes must show a peak, since a
real resize scales both and a single-axis peak is more often periodic content (fences, tiles). The
azimuthally averaged power spectrum of the high-pass residual is reported as evidence (up-convolution in
generators and upscalers leaves bumps or a sharp cut-off in its tail).

Limits: works on the luminance of a <= 1024x1024 full-resolution centre crop. Downscaling with a good
anti-aliasing filter leaves little trace (and must not be flagged); JPEG compression after the resize weakens
the peaks; strongly periodic scenes can still fool it. A global resize is an *edit*, so the reason is
``Category.EDITED`` and the probability stays moderate.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import median_filter

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

CROP = 640
MIN_SIDE = 64
PREDICTOR = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]], dtype=np.float32)
# Peak strength = peak / median background. Natural photos give ~3-8, bilinear 1.5x/2x up-sampling 20+.
PEAK_MIDPOINT = 16.0
GRID_PEAK = 6.0
PEAK_SLOPE = 0.35
P_MIN, P_MAX = 0.02, 0.8  # a global resize is an edit: cap what this alone can say


class SpectralDetector(Detector):
    """Periodic interpolation traces in the spectrum of a linear-predictor residual."""

    name = "spectral"
    version = "1.0.1"
    time_budget_s = 5.0

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            decoded = media.decoded
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be decoded.", error=str(exc))
        fmt = decoded.format
        h, w = decoded.luma.shape
        if min(w, h) < MIN_SIDE:
            return DetectorOutput.abstain(AbstainCode.TOO_SMALL, f"Needs at least {MIN_SIDE} px a side.")
        left, top = max(0, (w - CROP) // 2) // 8 * 8, max(0, (h - CROP) // 2) // 8 * 8
        grey = decoded.luma[top : min(h, top + CROP), left : min(w, left + CROP)].astype(np.float32)
        crop_w, crop_h = grey.shape[1], grey.shape[0]

        residual = cv2.filter2D(grey, -1, PREDICTOR, borderType=cv2.BORDER_REFLECT) - grey
        pmap = np.exp(-(residual**2) / 2.0).astype(np.float32)  # Kirchner's p-map, sigma = 1
        jpeg_grid = fmt == "JPEG" or _has_block_grid(pmap.mean(axis=0))
        col_peak, col_freq = _peak(pmap.mean(axis=0), jpeg_grid)
        row_peak, row_freq = _peak(pmap.mean(axis=1), jpeg_grid)
        strength = min(col_peak, row_peak)
        p = 1 / (1 + math.exp(-(strength - PEAK_MIDPOINT) * PEAK_SLOPE))
        p = min(P_MAX, max(P_MIN, p))
        evidence: dict[str, Any] = {
            "crop": [int(left), int(top), int(crop_w), int(crop_h)],
            "peak_strength": round(strength, 2),
            "peak_frequency": [round(col_freq, 4), round(row_freq, 4)],
            "jpeg_grid_ignored": jpeg_grid,
            "azimuthal_spectrum": _azimuthal(residual[:512, :512]),
        }
        if p >= 0.5:
            reasons = [
                Reason(
                    "resampling",
                    f"Periodic interpolation traces at {col_freq:.3f}/{row_freq:.3f} cycles per pixel: the image "
                    "was resampled (e.g. upscaled) after capture.",
                    Category.EDITED,
                )
            ]
        else:
            reasons = [Reason("no_resampling", "No periodic resampling traces were found.", Category.INFO)]
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence)


def _has_block_grid(profile: np.ndarray) -> bool:
    """An 8x8 grid left by an earlier JPEG shows a peak at 1/8 cycle/px, which 2x or 4x interpolation lacks."""
    x = profile - profile.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x))
    ratio = spec / (median_filter(spec, size=31, mode="nearest") + 1e-9)
    near = np.abs(freqs - 1 / 8) <= 1.0 / len(x)
    return bool(near.any() and ratio[near].max() > GRID_PEAK)


def _peak(profile: np.ndarray, jpeg_grid: bool) -> tuple[float, float]:
    x = profile - profile.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x))
    background = median_filter(spec, size=31, mode="nearest") + 1e-9
    ratio = spec / background
    usable = freqs > 0.03  # skip the low-frequency scene content
    if jpeg_grid:
        for k in range(1, 5):
            usable &= np.abs(freqs - k / 8) > 2.0 / len(x)
    if not usable.any():
        return 0.0, 0.0
    i = int(np.argmax(np.where(usable, ratio, 0)))
    return float(ratio[i]), float(freqs[i])


@lru_cache(maxsize=8)
def _azimuthal_layout(h: int, w: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial bin of every rfft2 coefficient, and how many times it stands for the full spectrum (1 or 2)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.hypot(fy, fx)  # cycles per pixel, 0..~0.7
    idx = np.minimum((r / 0.5 * bins).astype(int), bins).ravel()
    # A real image's spectrum is symmetric: every column of the half plane except DC (and Nyquist for an even
    # width) has a mirror twin at the same radius in the full plane.
    mirrored = np.full(fx.shape[1], 2.0)
    mirrored[0] = 1.0
    if w % 2 == 0:
        mirrored[-1] = 1.0
    weights = np.broadcast_to(mirrored[None, :], (h, fx.shape[1])).ravel()
    counts = np.bincount(idx, weights=weights, minlength=bins + 1)[:bins]
    return idx, weights, counts


def _azimuthal(residual: np.ndarray, bins: int = 32) -> list[float]:
    """Azimuthally averaged log power spectrum, from the half plane of a real FFT (same values, half the work)."""
    h, w = residual.shape
    power = np.abs(np.fft.rfft2(residual)) ** 2
    idx, weights, counts = _azimuthal_layout(h, w, bins)
    sums = np.bincount(idx, weights=power.ravel() * weights, minlength=bins + 1)[:bins]
    profile = np.log10(sums / np.maximum(counts, 1) + 1e-9)
    return [round(float(v - profile.max()), 3) for v in profile]
