"""Spectral detector: resampling (up-sampling) artefacts in the frequency domain.

Interpolation makes some pixels exact linear combinations of their neighbours at a periodic rhythm. Following
Kirchner (2008), a fixed linear predictor's residual is turned into a "p-map" (large where the pixel is well
predicted), averaged along rows and columns, and its 1-D spectra are searched for sharp periodic peaks
relative to the local spectral background. Peaks at multiples of 1/8 cycle/px are ignored when the image
carries an 8x8 JPEG grid, because block compression produces exactly those. Both axes must show a peak, since a
real resize scales both and a single-axis peak is more often periodic content (fences, tiles). The
azimuthally averaged power spectrum of the high-pass residual is reported as evidence (up-convolution in
generators and upscalers leaves bumps or a sharp cut-off in its tail).

Factor 2 is a blind spot of the peak search: its period is 2 px, i.e. the Nyquist frequency 0.5 = 4/8, which
the JPEG-grid exclusion removes. A second, direct test covers it: centre-aligned 2x interpolation (bilinear,
bicubic, Lanczos) builds each pixel pair from one shared source pixel, so the first differences inside a pair
and between pairs differ in size - one phase of |x[i+1] - x[i]| is consistently larger than the other. The
ratio of the two phases is taken per textured 64 px tile (flat tiles say nothing), skipping the differences
across the 8x8 JPEG block edges (all on one phase), and its median over tiles must hold on both axes. On the
evaluation photos re-saved at q90/q50 the ratio is 1.00-1.04 (camera files in the shared test data <= 1.03;
Meta's PDQ "blur-a-lot" sample, an edited file, 1.11), after 2x bilinear 1.12-1.29, bicubic 1.23-1.48,
Lanczos 1.07-1.16; the probability is a logistic around ``PARITY_MIDPOINT`` = 1.09.

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
import scipy.fft
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
PARITY_TILE = 64
PARITY_MIN_TILES = 8
PARITY_MIN_TEXTURE = 2.0  # mean |difference| (grey levels) for a tile to count
PARITY_MIDPOINT = 1.09
PARITY_SLOPE = 60.0
P_MIN, P_MAX = 0.02, 0.8  # a global resize is an edit: cap what this alone can say


class SpectralDetector(Detector):
    """Periodic interpolation traces in the spectrum of a linear-predictor residual."""

    name = "spectral"
    version = "1.1.0"
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
        p_peak = 1 / (1 + math.exp(-(strength - PEAK_MIDPOINT) * PEAK_SLOPE))
        parity = _pair_parity(grey)
        p_parity = 1 / (1 + math.exp(-(parity - PARITY_MIDPOINT) * PARITY_SLOPE))
        p = min(P_MAX, max(P_MIN, p_peak, p_parity))
        evidence: dict[str, Any] = {
            "crop": [int(left), int(top), int(crop_w), int(crop_h)],
            "peak_strength": round(strength, 2),
            "peak_frequency": [round(col_freq, 4), round(row_freq, 4)],
            "pair_parity_ratio": round(parity, 3),
            "jpeg_grid_ignored": jpeg_grid,
            "azimuthal_spectrum": _azimuthal(residual[:512, :512]),
        }
        if p >= 0.5 and p_parity > p_peak:
            reasons = [
                Reason(
                    "resampling",
                    f"Alternating pixel-pair structure on both axes (ratio {parity:.2f}): the image was most likely "
                    "upscaled by a factor of 2 after capture.",
                    Category.EDITED,
                )
            ]
        elif p >= 0.5:
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


def _pair_parity(grey: np.ndarray) -> float:
    """Median over textured tiles of the larger/smaller ratio of the two phases of first differences.

    The smaller of the two axes' values is returned (a real 2x resize scales both axes); 1.0 when fewer than
    PARITY_MIN_TILES tiles have texture. The crop starts on the 8x8 grid, so differences at offset 7 (mod 8)
    cross JPEG block edges and are left out.
    """
    t = PARITY_TILE
    pos = np.arange(t) % 8
    even, odd = pos % 2 == 0, (pos % 2 == 1) & (pos != 7)
    out = []
    for axis in (1, 0):
        x = np.moveaxis(grey, axis, 0)
        diff = np.abs(x[1:] - x[:-1])
        n, m = diff.shape[0] // t * t, diff.shape[1] // t * t
        if n == 0 or m == 0:
            return 1.0
        tiles = diff[:n, :m].reshape(n // t, t, m // t, t)
        e = tiles[:, even].mean(axis=(1, 3))
        o = tiles[:, odd].mean(axis=(1, 3))
        textured = (e + o) / 2 > PARITY_MIN_TEXTURE
        if textured.sum() < PARITY_MIN_TILES:
            return 1.0
        # Signed log-ratio: the same phase must win in most tiles for the median to move away from 0.
        log_ratio = np.log(np.maximum(e[textured], 1e-6) / np.maximum(o[textured], 1e-6))
        out.append(float(np.exp(abs(np.median(log_ratio)))))
    return min(out)


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
    # scipy's FFT (pocketfft vectorised), in float64: ~2x faster than numpy's float32 transform and more exact.
    power = np.abs(scipy.fft.rfft2(residual.astype(np.float64))) ** 2
    idx, weights, counts = _azimuthal_layout(h, w, bins)
    sums = np.bincount(idx, weights=power.ravel() * weights, minlength=bins + 1)[:bins]
    profile = np.log10(sums / np.maximum(counts, 1) + 1e-9)
    return [round(float(v - profile.max()), 3) for v in profile]
