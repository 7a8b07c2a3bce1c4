"""Generated images without a declaration: up-sampling traces in the spectrum and noise-residual statistics.

Generator decoders (GAN and diffusion VAE decoders, super-resolution networks) build the picture by repeated
2x up-sampling - transposed convolutions, nearest or bilinear up-sampling followed by convolutions. Each step
leaves a periodic fingerprint: peaks in the spectrum at 1/2 and 1/4 cycle per pixel, and a high-frequency tail
that does not fall like a camera's. Their "noise" is also no sensor noise: residuals are smoother and correlated
between neighbours. On the luminance of a centre crop (at most ``crop`` px, never resampled) the detector measures

* the strength of spectral peaks of a high-pass residual at the up-sampling frequencies (0.5 and 0.25 on each
  axis and the diagonals) against their spectral neighbourhood, separately for each axis and for the diagonal;
* the slope and curvature of the azimuthally averaged log spectrum over its upper half;
* residual statistics: lag-1 and lag-2 autocorrelation, kurtosis, and the share of near-zero residuals;

and combines them with a small logistic model (``WEIGHTS``). The model was fitted only on the repository's own
benchmark: ``python bench/fit_generated.py CORPUS`` (tune split, generated/upsample against authentic; the
recipe and the corpus generator are in bench/, nothing is downloaded). Features are standardised with the means
and scales stored beside the weights.

Misses: generators whose last stage is a clean resize to another size, images downscaled or strongly recompressed
after generation (both erase the periodic traces), and diffusion outputs whose decoder leaves little periodicity.
A camera photo upscaled 2x shows the same traces (that is the spectral detector's ``resampling`` finding too):
this detector cannot tell an upscaler from a generator, so its probability is capped below certainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from analysis.detectors.base import (
    AbstainCode,
    Category,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    PixelDetector,
    Reason,
)

FEATURES = (
    "peak_axis",
    "peak_quarter",
    "peak_diagonal",
    "tail_slope",
    "tail_curvature",
    "lag1",
    "lag2",
    "kurtosis",
    "near_zero",
)
# Fitted by `python bench/fit_generated.py CORPUS` on the tune split of bench/forgery_corpus.py's corpus (seed 13,
# shared exif-samples photos + Debian wallpaper photos + scikit-image photos: 362 items, 84 generated).
MEANS = (2.42791, 1.92855, 2.10228, -0.84699, 0.23079, 0.11588, 0.13858, 2.74787, 0.31265)
SCALES = (2.28455, 1.73943, 2.07535, 5.38129, 22.94498, 0.30292, 0.27895, 1.00529, 0.21522)
WEIGHTS = (0.8533, -0.9466, 0.7284, 1.8997, 1.2877, 0.914, 2.9891, -1.4044, 0.859)
BIAS = -3.0983


@dataclass(frozen=True)
class GeneratedConfig:
    crop: int = 512
    min_side: int = 128
    means: tuple[float, ...] = MEANS
    scales: tuple[float, ...] = SCALES
    weights: tuple[float, ...] = WEIGHTS
    bias: float = BIAS
    p_min: float = 0.02
    p_max: float = 0.9


class GeneratedDetector(PixelDetector):
    """Spectral up-sampling peaks and residual statistics -> a small fitted logistic model."""

    name = "generated"
    version = "1.0.0"
    time_budget_s = 5.0

    def __init__(self, config: GeneratedConfig | None = None) -> None:
        self.config = config or GeneratedConfig()

    def min_side(self) -> int:
        return self.config.min_side

    def examine(self, luma: np.ndarray, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        cfg = self.config
        feats = features(luma, cfg.crop)
        if feats is None:
            return DetectorOutput.abstain(AbstainCode.LOW_QUALITY, "The image is too flat to read generator traces.")
        x = (np.array([feats[k] for k in FEATURES]) - np.array(cfg.means)) / np.array(cfg.scales)
        logit = float(cfg.bias + np.dot(np.array(cfg.weights), x))
        p = min(cfg.p_max, max(cfg.p_min, 1 / (1 + math.exp(-max(-30.0, min(30.0, logit))))))
        evidence = {k: round(float(v), 4) for k, v in feats.items()}
        evidence["logit"] = round(logit, 3)
        if p >= 0.5:
            reasons = [
                Reason(
                    "generator_traces",
                    "The spectrum and noise carry the periodic traces of a generator's up-sampling layers "
                    f"(model score {p:.2f}); an AI upscaler leaves the same traces.",
                    Category.GENERATED,
                )
            ]
        else:
            reasons = [Reason("no_generator_traces", "No generator up-sampling traces were found.", Category.INFO)]
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence)


def features(luma: np.ndarray, crop: int) -> dict[str, float] | None:
    """The model's inputs for one luminance plane (None when it is too flat to say anything)."""
    h, w = luma.shape
    side = min(crop, h, w) // 8 * 8
    top, left = (h - side) // 2 // 8 * 8, (w - side) // 2 // 8 * 8
    g = luma[top : top + side, left : left + side].astype(np.float32)
    # Residual: the image minus its 3x3 neighbourhood prediction (the scene mostly cancels).
    pad = np.pad(g, 1, mode="reflect")
    pred = (pad[:-2, 1:-1] + pad[2:, 1:-1] + pad[1:-1, :-2] + pad[1:-1, 2:]) / 4.0
    r = g - pred
    texture = float(np.abs(r).mean())
    if texture < 0.2:  # a smooth residual is itself a generator trace; only a blank image says nothing
        return None
    window = _window(side)
    logp = np.fft.fftshift(_log_power(r * window))
    c = side // 2

    def peak(fy: float, fx: float) -> float:
        y, x = c + round(fy * side), c + round(fx * side)
        y, x = min(max(y, 2), side - 3), min(max(x, 2), side - 3)
        y0, y1, x0, x1 = max(0, y - 6), min(side, y + 7), max(0, x - 6), min(side, x + 7)
        around = logp[y0:y1, x0:x1]
        return float(logp[y - 1 : y + 2, x - 1 : x + 2].max() - np.median(around))

    # +-0.5 sits at the array's edge after fftshift (index 0); 0.5 - 1/side keeps inside the window.
    half = 0.5 - 1.0 / side
    peak_axis = max(peak(0, -half), peak(-half, 0))
    peak_quarter = max(peak(0, 0.25), peak(0.25, 0), peak(0, -0.25), peak(-0.25, 0))
    peak_diagonal = max(peak(-half, -half), peak(0.25, 0.25), peak(-0.25, 0.25))
    bins, counts = _radial_bins(side)
    profile = np.bincount(bins, weights=logp.ravel(), minlength=33)[:32] / counts
    f = (np.arange(32) + 0.5) / 64
    upper = slice(16, 32)
    slope, curvature = _fit_quadratic(f[upper], profile[upper])
    rc = r - r.mean()
    var = float((rc * rc).mean()) + 1e-6
    lag1 = float(((rc[:, 1:] * rc[:, :-1]).mean() + (rc[1:] * rc[:-1]).mean()) / (2 * var))
    lag2 = float(((rc[:, 2:] * rc[:, :-2]).mean() + (rc[2:] * rc[:-2]).mean()) / (2 * var))
    # rc**4 on float32 calls powf() per element (~14 ms on a 512 crop). In float64 the square is exact and the
    # fourth power is rounded once to 53 bits, so casting back gives the correctly rounded float32 result: the
    # same numbers as powf, ~1 ms.
    r2 = np.square(rc.astype(np.float64))
    kurtosis = float(np.square(r2).astype(np.float32).mean() / var**2)
    near_zero = float((np.abs(r) < 0.5).mean())
    return {
        "peak_axis": peak_axis,
        "peak_quarter": peak_quarter,
        "peak_diagonal": peak_diagonal,
        "tail_slope": slope,
        "tail_curvature": curvature,
        "lag1": lag1,
        "lag2": lag2,
        "kurtosis": math.log(kurtosis),
        "near_zero": near_zero,
    }


def _log_power(x: np.ndarray) -> np.ndarray:
    """log(|FFT(x)|^2 + 1e-6) of a real square image with an even side, unshifted.

    scipy's real FFT in float64 (pocketfft, as numpy's, but vectorised; numpy transformed the float32 input in
    float32, ~7 ms for a 512 px crop): the half plane is computed and the other half is its mirror (a real
    image's spectrum is conjugate-symmetric), ~3x cheaper than the full transform and the log of every cell. The
    features agree with numpy's float32 transform to ~3e-6 of their value, which is float32's own rounding.
    """
    n = x.shape[0]
    spectrum = scipy.fft.rfft2(x.astype(np.float64))  # columns 0 .. n/2
    half = np.log(spectrum.real**2 + spectrum.imag**2 + 1e-6)
    full = np.empty((n, n), np.float64)
    full[:, : n // 2 + 1] = half
    # Column v > n/2 of row u is the conjugate of column n - v of row -u (mod n).
    full[:, n // 2 + 1 :] = half[(-np.arange(n)) % n, n // 2 - 1 : 0 : -1]
    return full


@lru_cache(maxsize=4)
def _window(side: int) -> np.ndarray:
    """The 2-D Hann window (the crop side only takes a few values, so it is built once per side)."""
    window = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    window.flags.writeable = False
    return window


@lru_cache(maxsize=4)
def _radial_bins(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Each shifted-spectrum cell's radius bin (32 bins up to 0.5 cycle/px, 32 = beyond) and each bin's cell
    count: ~3 ms of index arithmetic per call that only depends on the crop side."""
    c = side // 2
    yy, xx = np.indices((side, side))
    radius = np.hypot(yy - c, xx - c) / side
    bins = np.minimum((radius / 0.5 * 32).astype(int), 32).ravel()
    counts = np.maximum(np.bincount(bins, minlength=33)[:32], 1)
    bins.flags.writeable = False
    counts.flags.writeable = False
    return bins, counts


def _fit_quadratic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    a = np.polyfit(x - x.mean(), y, 2)
    return float(a[1]), float(a[0])
