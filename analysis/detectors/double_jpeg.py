"""Double-quantisation analysis: regions without the double-JPEG trace the rest of the image carries (splices).

A photo decoded and saved again as JPEG on the same 8x8 grid is *aligned double compressed* (A-DJPG): each DCT
coefficient was quantised with the primary step Q1, then re-quantised with the last step Q2, which leaves a
periodic pattern in its histogram (bins that two Q1 multiples round into, bins none does). A piece pasted from
another picture does not share that history: its earlier compressions were on its own grid (63 of 64 offsets
miss the host's: non-aligned, NA-DJPG) or at another table, so on the host grid it looks singly compressed. In
the manner of Bianchi & Piva (IEEE TIFS 2012, "Image forgery localization via block-grained analysis of JPEG
artifacts"):

1. The last quantisation Q2: a JPEG's own luminance table (Pillow ``quantization``) on the file's grid. For
   JPEG-origin images saved losslessly (JPEG-then-PNG) it is read from the pixels: the grid is the offset (of 64)
   where the coefficients near zero are exact zeros blurred only by rounding, the steps jpeg_local's estimator
   finds there name an IJG quality (the table family nearly all software writes; the estimator misses steps of 1-2
   and sometimes returns a multiple), and of that table and every finer IJG table the one the coefficients sit on
   exactly is kept (after two compressions they also sit roughly on the first table, which the estimator tends
   to return). Tables outside the IJG family fall back to the per-frequency estimates.
2. Every block on that grid is re-transformed (DCT-II of the decoded Y plane) and divided by Q2: the integers k
   the last compression stored, up to rounding. For each of the lowest AC frequencies, the primary step Q1 is
   estimated from the periodic artefacts of the |k| histogram: the DQ model is p(k) = p0(k) n(k), where n(k) (mean
   1) is (Q1 / Q2) times the number of Q1 multiples that round to k, and p0 the single-compression histogram,
   estimated by *calibration* (the same DCT on a grid shifted by 4 px, where no quantisation shows). The Q1 (and
   the share alpha of the image it holds for) with the highest likelihood wins; a frequency counts when that
   gain over "single compression" is clear.
3. Each block's log-likelihood ratio "double (host)" against "single / misaligned (paste)" is the sum over its
   coefficients of those frequencies of log n'(k) (n' = alpha n + 1 - alpha, normalised), counting only values
   past half a primary step and past what rounding noise reaches from zero. Per 32 px cell, the deviation from
   the image's mean ratio per coefficient is standardised by the square root of the cell's count and the robust
   spread over the cells; a compact region (3x3 cells) sums deviations and counts the same way, and the score
   is the z of the least doubly-compressed region. ``double_jpeg_heatmap.png`` maps the per-cell z.
4. A second map (``off_grid.py``, NA-DJPG): regions carrying a JPEG lattice on their own 8x8 grid, offset from the
   host's - a paste from another JPEG, whatever the host's history. Its probability joins the first by max (also
   for hosts compressed once), and the heatmap shows the larger of the two per 32 px cell.

Sees: pastes into a JPEG whose last save was JPEG (on the host's table) or JPEG-then-PNG, when the host carries a
visible primary compression (Q1 not equal to, nor a divisor of, Q2 at several frequencies); with the second map,
large pastes compressed coarser than the last save. Misses: images compressed once (nothing to compare:
``double_jpeg_single``, no probability) unless the second map finds a paste, a last save whose steps are
multiples of the first (Q1 divides Q2: no periodic trace), a primary quality equal to the last, a host resized or
cropped off-grid between the saves, pastes that were themselves aligned with the host grid and the host's primary
table, pastes under ~3 cells, and a doubly-compressed paste in a singly-compressed host (the reverse case).
The probability never goes below 0.5: a consistent history is no evidence of authenticity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy.special import ndtr

from analysis.detectors.base import (
    AbstainCode,
    Artifact,
    Category,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    PixelDetector,
    Reason,
    grid_centre_crop,
)
from analysis.detectors.heatmaps import heatmap_png
from analysis.detectors.jpeg import DCT
from analysis.detectors.jpeg_local import (
    ZIGZAG,
    JpegLocalConfig,
    block_dct,
    clipped_blocks,
    clipped_colour_blocks,
    estimate_step,
    grid_block_dct,
    grid_offset,
)
from analysis.detectors.off_grid import OffGrid, ijg_table, off_grid_evidence

# Low and middle frequencies (row, column) for locating the grid: their steps are 2 or more up to quality ~95.
_GRID_FREQUENCIES = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2))
ALPHAS = (0.5, 0.75, 0.9, 0.97)  # share of the image assumed doubly compressed (the rest: pastes, flat blocks)


@dataclass(frozen=True)
class DoubleJpegConfig:
    max_side: int = 1024  # centre crop on the grid for larger images (resampling would erase the steps)
    frequencies: int = 15  # lowest AC frequencies in zig-zag order
    max_bin: int = 20  # |k| bins modelled (larger values are rare and carry little)
    max_primary: int = 40  # candidate primary steps 1..max_primary
    min_gain: float = 0.01  # mean log-likelihood gain per coefficient for a frequency to show a primary step
    min_coefficients: int = 400  # non-zero coefficients a frequency needs before its histogram is judged
    cell_blocks: int = 4  # 4x4 blocks = 32 px cells
    min_cell_coefficients: int = 8
    min_cells: int = 16
    region_cells: int = 3  # the compact region scored: 3x3 cells (96 px)
    clip_margin: int = 3  # a colour channel within this of 0 or 255 counts as clipped
    sigma: float = 0.5  # rounding noise of a decoded coefficient (DCT units): pixel rounding, colour conversion
    z_floor: float = 0.05
    # Set on the corpus tune split: authentic re-saves reach region z 3.9-7.6 (one JPEG-then-PNG outlier 41.5),
    # half the doubly-compressed splices 19-57.
    z_midpoint: float = 10.0
    z_slope: float = 0.4
    # A consistent history says nothing for authenticity (a copy-move or a retouch keeps it; camera files have
    # no second compression at all): the detector only ever raises the score.
    p_min: float = 0.5
    p_max: float = 0.92
    # The off-grid map (analysis/detectors/off_grid.py). Tune split: authentic regions reach z 8.3 (a periodic
    # wallpaper texture, "Aqua"), all others stay under 5.5; the one splice it sees reaches 10.9.
    off_grid_midpoint: float = 10.0
    off_grid_slope: float = 0.5


class DoubleJpegDetector(PixelDetector):
    """Per-block aligned double-JPEG likelihood against the image's own estimated primary quantisation."""

    name = "double_jpeg"
    version = "1.2.0"
    time_budget_s = 6.0

    def __init__(self, config: DoubleJpegConfig | None = None) -> None:
        self.config = config or DoubleJpegConfig()

    def min_side(self) -> int:
        return 8 * self.config.cell_blocks * 4

    def examine(self, luma: np.ndarray, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        cfg = self.config
        h, w = luma.shape
        crop, top, left = grid_centre_crop(luma, cfg.max_side)
        g = crop.astype(np.float32)
        picks = np.array(ZIGZAG[: cfg.frequencies])
        last = _last_quantisation(media, g, picks)
        if isinstance(last, DetectorOutput):
            return last
        (oy, ox), q2, source, aligned = last
        off = off_grid_evidence(g, (oy, ox))
        if aligned is None:
            aligned = grid_block_dct(media, g, oy, ox)[:, :, picks[:, 0], picks[:, 1]]  # (by, bx, F)
        shifted = block_dct(g[oy + 4 :, ox + 4 :])[:, :, picks[:, 0], picks[:, 1]]
        # Steps coarser than the primary candidates leave nearly every coefficient at 0: nothing to fit.
        known = (q2 >= 1) & (q2 <= cfg.max_primary)
        k = np.abs(np.rint(aligned / np.maximum(q2, 1))).astype(np.int32)
        k_cal = np.abs(np.rint(shifted / np.maximum(q2, 1))).astype(np.int32)
        fits = [_fit_primary(k[..., i], k_cal[..., i], int(q2[i]), cfg) if known[i] else None for i in range(len(q2))]
        if sum(fit is not None for fit in fits) < 2:
            return DetectorOutput.abstain(
                AbstainCode.LOW_QUALITY,
                "Too few non-zero DCT coefficients (a flat image) to read a compression history.",
                last_quantisation=source,
            )
        informative = [(i, fit) for i, fit in enumerate(fits) if fit is not None and fit.gain >= cfg.min_gain]
        primary = {f"{picks[i][0]}{picks[i][1]}": [int(q2[i]), fit.q1] for i, fit in informative}
        evidence: dict[str, Any] = {
            "last_quantisation": source,
            "crop": [int(left), int(top), int(g.shape[1]), int(g.shape[0])],
            "grid_offset": [int(ox), int(oy)],
            "primary_steps": primary,  # frequency "rc": [last step, estimated primary step]
        }
        p_off, off_reasons = self._off_grid(off, evidence, top, left)
        if len(informative) < 2:
            reasons = [
                Reason(
                    "double_jpeg_single",
                    "No trace of an earlier JPEG compression under the last one: nothing to compare regions by.",
                    Category.INFO,
                )
            ]
            if not off_reasons:
                return DetectorOutput(status="ok", probability=None, reasons=reasons, evidence=evidence)
            # A single compressed host can still hold a paste with a lattice of its own.
            artifact = _heatmap_artifact([], off, (h, w), (top, left))
            return DetectorOutput(
                status="ok", probability=p_off, reasons=off_reasons + reasons, evidence=evidence, artifacts=[artifact]
            )

        llr, count = _block_llr(k, informative, cfg.max_bin)
        # Blocks with clipped pixels were rounded into range after an IDCT: their coefficients left the primary
        # lattice without any edit. That includes a colour channel clipped in RGB between the two saves (a
        # saturated red petal), which moves the luminance off the lattice with the luminance itself mid-range.
        clipped = clipped_blocks(g[oy:, ox:])[: count.shape[0], : count.shape[1]]
        clipped |= clipped_colour_blocks(media, (left + ox, top + oy), clipped.shape, cfg.clip_margin)
        llr[clipped], count[clipped] = 0, 0
        cell_llr, cell_count, cell_valid = _cells(llr, count, cfg.cell_blocks, cfg.min_cell_coefficients)
        if int(cell_valid.sum()) < cfg.min_cells:
            return DetectorOutput.abstain(
                AbstainCode.LOW_QUALITY,
                "Too few textured blocks to compare their compression history.",
                cells=int(cell_valid.sum()),
                **evidence,
            )
        z, strength, (cx, cy) = _region_evidence(cell_llr, cell_count, cell_valid, cfg)
        p = min(cfg.p_max, max(cfg.p_min, 1 / (1 + math.exp(-(strength - cfg.z_midpoint) * cfg.z_slope))))
        p = max(p, p_off or 0.0)
        cell_px = 8 * cfg.cell_blocks
        evidence.update(
            {
                "mean_llr_per_coefficient": round(float(cell_llr[cell_valid].sum() / cell_count[cell_valid].sum()), 4),
                "region_z": round(strength, 3),
                # the centre of the region's middle cell (the box filter is centred)
                "region_px": [int(left + ox + (cx + 0.5) * cell_px), int(top + oy + (cy + 0.5) * cell_px)],
            }
        )
        if strength >= cfg.z_midpoint:
            x, y = evidence["region_px"]
            reasons = [
                Reason(
                    "double_jpeg_region",
                    f"Blocks around ({x}, {y}) px lack the double-JPEG trace the rest of the image carries (robust "
                    f"z = {strength:.1f}), as a piece pasted from a picture compressed differently would.",
                    Category.MANIPULATED,
                )
            ]
        else:
            reasons = []
        reasons += off_reasons
        if not reasons:
            reasons = [
                Reason(
                    "double_jpeg_consistent",
                    "Every region carries the same double-JPEG compression history.",
                    Category.INFO,
                )
            ]
        cells = [(np.where(cell_valid, z, 0), (top + oy, left + ox), cell_px)]
        artifact = _heatmap_artifact(cells, off, (h, w), (top, left))
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence, artifacts=[artifact])

    def _off_grid(
        self, off: OffGrid | None, evidence: dict[str, Any], top: int, left: int
    ) -> tuple[float | None, list[Reason]]:
        """The off-grid map's probability (None when it saw nothing) and reason; its figures go into `evidence`."""
        cfg = self.config
        if off is None:
            return None, []
        ry, rx = off.region
        x, y = int(left + (rx + 1) * off.tile_px), int(top + (ry + 1) * off.tile_px)  # the region's centre
        evidence.update(
            {"off_grid_z": round(off.strength, 3), "off_grid_shift": list(off.shift[::-1]), "off_grid_px": [x, y]}
        )
        if off.strength < cfg.off_grid_midpoint:
            return None, []
        z = off.strength - cfg.off_grid_midpoint
        p = min(cfg.p_max, max(cfg.p_min, 1 / (1 + math.exp(-z * cfg.off_grid_slope))))
        reason = Reason(
            "double_jpeg_off_grid",
            f"Blocks around ({x}, {y}) px carry a JPEG lattice on their own 8x8 grid, offset ({off.shift[1]}, "
            f"{off.shift[0]}) px from the image's (z = {off.strength:.1f}), as a piece pasted from another JPEG "
            "would.",
            Category.MANIPULATED,
        )
        return p, [reason]


def _heatmap_artifact(
    cells: list[tuple[np.ndarray, tuple[int, int], int]],
    off: OffGrid | None,
    shape: tuple[int, int],
    origin: tuple[int, int],
) -> Artifact:
    """One heatmap of both maps at 32 px: the double-JPEG cells' z and the off-grid tiles' z (each tile 2x2
    cells), whichever is larger; maps are placed at their (top, left) in the image."""
    h, w = shape
    cell_px = 32
    heat = np.zeros((h // cell_px + 1, w // cell_px + 1), np.float32)
    layers = list(cells)
    if off is not None:
        up = off.tile_px // cell_px
        layers.append((np.maximum(np.kron(off.tile_z, np.ones((up, up), np.float32)), 0), origin, cell_px))
    for values, (top, left), _ in layers:
        y0, x0 = top // cell_px, left // cell_px
        hh, ww = min(values.shape[0], heat.shape[0] - y0), min(values.shape[1], heat.shape[1] - x0)
        heat[y0 : y0 + hh, x0 : x0 + ww] = np.maximum(heat[y0 : y0 + hh, x0 : x0 + ww], values[:hh, :ww])
    return Artifact("double_jpeg_heatmap.png", "image/png", heatmap_png(heat, w, h, lo=0.0, hi=8.0))


def _last_quantisation(
    media: MediaInput, g: np.ndarray, picks: np.ndarray
) -> tuple[tuple[int, int], np.ndarray, str, np.ndarray | None] | DetectorOutput:
    """The grid offset, the last step of each picked frequency (0 = unknown), where they came from, and the picked
    coefficients on that grid when reading the steps from pixels needed them already."""
    if media.decoded.format == "JPEG":
        try:
            with media.open_image() as image:
                mode = image.mode
                tables = dict(getattr(image, "quantization", None) or {})
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The JPEG could not be opened.", error=str(exc))
        table = tables.get(0)
        if mode not in {"L", "RGB", "YCbCr"} or table is None or len(table) != 64:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT,
                "The JPEG has no usable luminance quantisation table.",
                mode=mode,
            )
        q = np.asarray(table, dtype=np.float32).reshape(8, 8)  # natural (row-major) order, as Pillow reports it
        return (0, 0), q[picks[:, 0], picks[:, 1]], "file_table", None
    # Not a JPEG file: a JPEG-origin image saved losslessly keeps the last JPEG's grid and steps in its pixels.
    local = JpegLocalConfig(frequencies=len(picks))
    oy, ox = _grid_by_zero_spike(g)
    coefficients = grid_block_dct(media, g, oy, ox)[:, :, picks[:, 0], picks[:, 1]]
    steps = np.array([estimate_step(coefficients[..., i].ravel(), local) for i in range(len(picks))], np.float32)
    steps[steps < 2] = 0  # a "step" of 1 is no evidence of quantisation
    if int((steps > 0).sum()) < 2:
        return DetectorOutput.abstain(
            AbstainCode.UNSUPPORTED_FORMAT,
            "No trace of JPEG compression: the double-quantisation model does not apply.",
            format=media.decoded.format,
        )
    quality = _ijg_quality(steps, picks)
    if quality is not None:
        quality = _finest_exact_table(coefficients, picks, quality)
        # The per-frequency estimates miss steps of 1-2 (rounding noise of the RGB round trip reaches them) and
        # now and then lock onto a multiple; the IJG table they agree with gives every step at once.
        return (oy, ox), ijg_table(quality)[picks[:, 0], picks[:, 1]], f"ijg_quality_{quality}", coefficients
    return (oy, ox), steps, "estimated_from_pixels", coefficients


def _ijg_quality(steps: np.ndarray, picks: np.ndarray, min_agree: int = 5) -> int | None:
    """The IJG quality whose table the estimated steps (0 = unknown) agree with, within one step or 10 %: at least
    `min_agree` frequencies and two thirds of the estimated ones; None when no table fits that well."""
    known = steps >= 2
    best: tuple[int, float, int] | None = None
    for quality in range(20, 101):
        table = ijg_table(quality)[picks[:, 0], picks[:, 1]]
        error = np.abs(steps - table)
        agree = known & (error <= np.maximum(1.0, 0.1 * table))
        key = (int(agree.sum()), -float(error[agree].sum()), quality)
        # On a tie the finer table wins: steps the estimate did not see are more likely small ones.
        if best is None or key[:2] >= best[:2]:
            best = key
    if best is None or best[0] < min_agree or best[0] < 2 * int(known.sum()) / 3:
        return None
    return best[2]


def _finest_exact_table(coefficients: np.ndarray, picks: np.ndarray, quality: int, sigma: float = 0.45) -> int:
    """The last table among `quality` and the finer IJG ones: the one whose lattice the coefficients sit on exactly.

    After two compressions the values sit exactly on the last step's multiples and only roughly on the first's
    (off by up to half a last step), and the per-frequency estimate, taking the largest step that fits, often
    returns the first table. So each finer table is scored by its periodicity (mean cos(2 pi c / q) over values
    past half a step) relative to what rounding noise alone (`sigma`, DCT units) leaves of an exact lattice; a
    rough lattice scores well below 1, a non-divisor table near 0. Ties go to the finer table.
    """
    values = coefficients.reshape(-1, coefficients.shape[-1])
    values = values[:: values.shape[0] // 4000 + 1]
    best, best_score = quality, -np.inf
    seen: set[bytes] = set()
    for candidate in range(quality, 101):
        steps = ijg_table(candidate)[picks[:, 0], picks[:, 1]]
        if steps.tobytes() in seen:
            continue
        seen.add(steps.tobytes())
        scores = []
        for i, step in enumerate(steps):
            if step < 2:
                continue
            big = values[:, i][np.abs(values[:, i]) >= step / 2]
            if big.size < 50:
                continue
            expected = math.exp(-2 * math.pi**2 * sigma**2 / float(step) ** 2)
            scores.append(float(np.cos(2 * np.pi * big / step).mean()) / expected)
        if len(scores) >= 5 and float(np.mean(scores)) >= best_score - 0.02:
            best, best_score = candidate, max(best_score, float(np.mean(scores)))
    return best


def _grid_by_zero_spike(g: np.ndarray, side: int = 512) -> tuple[int, int]:
    """The 8x8 grid offset (rows, columns) of the last JPEG in a losslessly saved image.

    On the grid the last compression rounded every coefficient to a multiple of its step (2 or more at these
    frequencies for any quality below ~95), so after decoding, the values near zero are a spike of exact zeros
    blurred only by pixel rounding: nearly all |c| < 1.5 also have |c| < 0.5. Off the grid the values spread
    smoothly and about a third do. Differences across block borders (``grid_offset``) miss faint blocking at
    high qualities; this does not. Every offset at once: separable 8-tap DCT filters over a centre crop.
    """
    h, w = g.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    x = np.ascontiguousarray(g[top : top + side, left : left + side]) - 128.0
    by, bx = (x.shape[0] - 7) // 8, (x.shape[1] - 7) // 8
    if min(by, bx) < 4:
        return grid_offset(g, axis=0), grid_offset(g, axis=1)
    rows = {v: cv2.filter2D(x, cv2.CV_32F, DCT[v][None, :], anchor=(0, 0)) for v in (0, 1, 2)}
    small = np.zeros((8, 8), np.float64)
    near = np.zeros((8, 8), np.float64)
    for u, v in _GRID_FREQUENCIES:
        c = np.abs(cv2.filter2D(rows[v], cv2.CV_32F, DCT[u][:, None], anchor=(0, 0)))
        c = c[: by * 8, : bx * 8].reshape(by, 8, bx, 8)
        small += (c < 0.5).sum(axis=(0, 2))
        near += (c < 1.5).sum(axis=(0, 2))
    ratio = small / np.maximum(near, 1.0)
    py, px = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    # Phases of the crop's block origins, back in the coordinates of `g`.
    return int((py + top) % 8), int((px + left) % 8)


@dataclass(frozen=True)
class _PrimaryFit:
    q1: int
    alpha: float
    gain: float  # mean log-likelihood gain per non-zero coefficient over single compression
    log_ratio: np.ndarray  # (max_bin + 2,) per |k|: log of the DQ/SQ likelihood ratio; 0 where not counted


@lru_cache(maxsize=1024)
def _periodic(q2: int, max_primary: int, max_bin: int, sigma: float) -> np.ndarray:
    """n(k) for every primary step 1..max_primary (rows) and k = 0..max_bin (columns): (Q1 / Q2) times how many
    multiples of Q1, blurred by the decoder's rounding noise (Gaussian, `sigma` in DCT units), land in bin k."""
    q1 = np.arange(1, max_primary + 1, dtype=np.float64)[:, None, None]
    # Multiples up to the last bin (and one beyond) for the finest Q1; coarser ones repeat a few harmlessly.
    m = np.arange(0, (max_bin + 2) * q2 + 2, dtype=np.float64)[None, :, None]
    k = np.arange(0, max_bin + 1, dtype=np.float64)[None, None, :]
    centre = m * q1
    upper = _normal_cdf(((k + 0.5) * q2 - centre) / sigma)
    lower = _normal_cdf(((k - 0.5) * q2 - centre) / sigma)
    # Negative multiples mirror into |k| too (the histogram is of |k|); m = 0 counted once.
    mirrored = _normal_cdf(((k + 0.5) * q2 + centre) / sigma) - _normal_cdf(((k - 0.5) * q2 + centre) / sigma)
    mass = (upper - lower) + np.where(centre > 0, mirrored, 0.0)
    n = mass.sum(axis=1) * q1[:, :, 0] / q2
    return np.asarray(n)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return np.asarray(ndtr(x))


def _fit_primary(k: np.ndarray, k_cal: np.ndarray, q2: int, cfg: DoubleJpegConfig) -> _PrimaryFit | None:
    """The primary step whose DQ model best explains the |k| histogram (bins 1..max_bin), or None if too few."""
    kmax = cfg.max_bin
    hist = np.bincount(np.minimum(k.ravel(), kmax + 1), minlength=kmax + 2)[1 : kmax + 1].astype(np.float64)
    total = float(hist.sum())
    if total < cfg.min_coefficients:
        return None
    p0 = np.bincount(np.minimum(k_cal.ravel(), kmax + 1), minlength=kmax + 2)[1 : kmax + 1].astype(np.float64)
    p0 = (p0 + 0.5) / float((p0 + 0.5).sum())
    n = _periodic(q2, cfg.max_primary, kmax, cfg.sigma)[:, 1:]  # (P, K)
    alphas = np.asarray(ALPHAS)[:, None, None]
    mix = alphas * n[None] + (1 - alphas)  # (A, P, K)
    z = (p0 * mix).sum(axis=2, keepdims=True)
    log_ratio = np.log(np.maximum(mix / z, 1e-9))
    gain = (hist * log_ratio).sum(axis=2) / total  # (A, P): the log-likelihood gain over p0 alone
    flat = np.ptp(n, axis=1) < 0.2  # Q1 = Q2, Q1 dividing Q2, or much finer: no periodic trace to fit
    gain[:, flat] = -np.inf
    a, q = np.unravel_index(int(np.argmax(gain)), gain.shape)
    if not np.isfinite(gain[a, q]):
        return None
    q1 = int(q) + 1
    ratio = np.zeros(kmax + 2)
    # Small values are left out of the per-block ratio: under the primary step they belong to its zero bin, and
    # how many of them rounding noise lifts out of it depends on how flat the block is (a wall, a sky: mostly
    # zeros), not on its history. So the ratio starts past half a primary step and past the bins that noise
    # reaches from zero (2.5 sigma).
    first = max(1, math.ceil(q1 / (2 * q2)), math.ceil(2.5 * cfg.sigma / q2 + 0.5))
    ratio[first : kmax + 1] = log_ratio[a, q, first - 1 :]
    return _PrimaryFit(q1, float(ALPHAS[a]), float(gain[a, q]), ratio)


def _block_llr(k: np.ndarray, fits: list[tuple[int, _PrimaryFit]], max_bin: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block: summed log-likelihood ratio (double over single) and how many coefficients it rests on."""
    llr = np.zeros(k.shape[:2], np.float32)
    count = np.zeros(k.shape[:2], np.float32)
    for i, fit in fits:
        kk = np.minimum(k[..., i], max_bin + 1)
        llr += fit.log_ratio[kk].astype(np.float32)
        count += (fit.log_ratio[kk] != 0).astype(np.float32)
    return llr, count


def _cells(llr: np.ndarray, count: np.ndarray, k: int, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed log-likelihood ratio and coefficient count over k x k blocks, and which cells rest on enough."""
    by, bx = llr.shape[0] // k * k, llr.shape[1] // k * k
    num = llr[:by, :bx].reshape(by // k, k, bx // k, k).sum(axis=(1, 3))
    den = count[:by, :bx].reshape(by // k, k, bx // k, k).sum(axis=(1, 3))
    valid = den >= min_count
    return np.where(valid, num, 0.0), np.where(valid, den, 0.0), valid


def _region_evidence(
    cell_llr: np.ndarray, cell_count: np.ndarray, valid: np.ndarray, cfg: DoubleJpegConfig
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Per-cell z and the strongest compact region's z of "less doubly compressed than the image as a whole".

    A cell's evidence grows with the coefficients it rests on: its deviation from the image's mean ratio per
    coefficient is divided by the square root of its count (a flat cell with a handful of coefficients cannot
    stand out by chance), then by the robust spread of that standardised deviation over the cells (texture makes
    it wider than counting alone would). A region sums its cells' deviations and counts the same way.
    """
    mu = float(cell_llr[valid].sum() / max(cell_count[valid].sum(), 1e-6))
    deviation = np.where(valid, cell_llr - mu * cell_count, 0.0).astype(np.float32)
    standard = deviation / np.sqrt(np.maximum(cell_count, 1e-6))
    centre = float(np.median(standard[valid]))
    spread = max(1.4826 * float(np.median(np.abs(standard[valid] - centre))), cfg.z_floor)
    z = np.where(valid, -(standard - centre) / spread, 0.0).astype(np.float32)
    size = cfg.region_cells
    if min(z.shape) < size:
        return z, 0.0, (0, 0)
    area = float(size * size)
    summed = (
        cv2.blur(
            deviation - centre * np.sqrt(np.maximum(cell_count, 1e-6)), (size, size), borderType=cv2.BORDER_CONSTANT
        )
        * area
    )
    counted = cv2.blur(cell_count.astype(np.float32), (size, size), borderType=cv2.BORDER_CONSTANT) * area
    share = cv2.blur(valid.astype(np.float32), (size, size), borderType=cv2.BORDER_CONSTANT)
    region = np.where(share >= 0.5, -summed / (spread * np.sqrt(np.maximum(counted, 1e-6))), -np.inf)
    y, x = np.unravel_index(int(np.argmax(region)), region.shape)
    best = float(region[y, x])
    return z, (best if np.isfinite(best) else 0.0), (int(x), int(y))
