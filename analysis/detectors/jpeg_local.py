"""Local JPEG compression model: blocks that do not fit the image's own JPEG quantisation (pastes, local edits).

A photo that went through JPEG keeps, in every 8x8 block on its grid, DCT coefficients that sit on multiples of
the quantisation step of each frequency - also after it is decoded and saved as PNG. A piece pasted from another
picture breaks that: its blocks straddle the host grid (63 of 64 offsets), came from another quality, were never
compressed, or were resampled. So:

1. The grid offset is estimated from the image (the column and row phase, mod 8, where pixel differences jump).
2. Every block on that grid is transformed (DCT-II), and for each of the 20 lowest AC frequencies the largest
   step q (2..``max_step``) on which the whole image's non-zero coefficients sit is estimated (periodicity:
   the mean of cos(2 pi c / q) must stay high; multiples of the true step fail it, its divisors are not preferred).
3. Each block's misfit is the mean of 1 - cos(2 pi c / q) over its informative coefficients (|c| >= q / 2 at
   frequencies with q >= 3): ~0 for host blocks, ~1 for a pasted block. Blocks with fewer than two such
   coefficients (flat) are left out.
4. Misfit is averaged over 32 px cells; the score is the robust z of the most misfitting compact region (3x3
   cells). ``jpeg_local_heatmap.png`` shows the per-cell misfit.

When no frequency shows a step (never-compressed images, images resized or filtered after their last JPEG) the
detector abstains ``unsupported_format`` ("no JPEG trace"). Misses: a donor whose quantisation steps are
multiples of the host's and that landed on the host grid; a final JPEG save coarser than the original (it
re-quantises everything onto one new table - double_jpeg looks for the paste there);
pastes smaller than ~3 cells. Strong local edits that keep the grid (a brightness change) shift coefficients
off their steps too, which is what we want.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from analysis.detectors.base import (
    DECODE_ERRORS,
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
from analysis.detectors.heatmaps import heatmap_png, region_strength, robust_z

# Zig-zag order of the 8x8 DCT frequencies after DC (row, column).
ZIGZAG = sorted(
    ((r, c) for r in range(8) for c in range(8)),
    key=lambda rc: (rc[0] + rc[1], rc[1] if (rc[0] + rc[1]) % 2 else rc[0]),
)[1:]


@dataclass(frozen=True)
class JpegLocalConfig:
    max_side: int = 1024  # centre crop on the grid for larger images (no resampling: it would erase the steps)
    frequencies: int = 20
    max_step: int = 40
    min_periodicity: float = 0.55  # mean cos(2 pi c / q) for a step to be accepted
    cell_blocks: int = 4  # 4x4 blocks = 32 px cells
    min_cells: int = 16
    z_floor: float = 0.08
    z_midpoint: float = 4.0  # set on the corpus tune split
    z_slope: float = 1.0
    p_min: float = 0.03
    p_max: float = 0.92


class JpegLocalDetector(PixelDetector):
    """Per-block fit to the image's own estimated JPEG quantisation, on its own 8x8 grid."""

    name = "jpeg_local"
    version = "1.0.0"
    time_budget_s = 6.0

    def __init__(self, config: JpegLocalConfig | None = None) -> None:
        self.config = config or JpegLocalConfig()

    def min_side(self) -> int:
        return 8 * self.config.cell_blocks * 4

    def examine(self, luma: np.ndarray, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        cfg = self.config
        h, w = luma.shape
        crop, top, left = grid_centre_crop(luma, cfg.max_side)
        g = crop.astype(np.float32)
        oy, ox = grid_offset(crop, axis=0), grid_offset(crop, axis=1)
        coefficients = grid_block_dct(media, g, oy, ox)  # (by, bx, 8, 8)
        picks = np.array(ZIGZAG[: cfg.frequencies])
        values = coefficients[:, :, picks[:, 0], picks[:, 1]]  # (by, bx, F)
        steps = np.array([estimate_step(values[..., i].ravel(), cfg) for i in range(values.shape[2])])
        informative = steps >= 3
        if int(informative.sum()) < 2:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT,
                "No trace of JPEG compression: the local compression model does not apply.",
                steps=steps.tolist(),
            )
        misfit, weight = _block_misfit(values[..., informative], steps[informative])
        # Blocks with clipped pixels (0 or 255) were rounded into range after the IDCT: their coefficients leave the
        # steps without any edit, so they are left out.
        clipped = clipped_blocks(crop[oy:, ox:])
        if media.decoded.format != "JPEG":
            # Outside JPEG the luma was computed from RGB, and a colour channel clipped in RGB (a saturated red)
            # moves it off the steps too, with the luma itself far from 0 or 255.
            clipped |= clipped_colour_blocks(media, (left + ox, top + oy), clipped.shape)
        weight[clipped[: weight.shape[0], : weight.shape[1]]] = 0
        cell_misfit, cell_valid = _cells(misfit, weight, cfg.cell_blocks)
        if int(cell_valid.sum()) < cfg.min_cells:
            return DetectorOutput.abstain(
                AbstainCode.LOW_QUALITY,
                "Too few textured blocks to test against the compression model.",
                cells=int(cell_valid.sum()),
            )
        z = robust_z(cell_misfit, cell_valid, cfg.z_floor)
        strength, (cx, cy) = region_strength(z, cell_valid)
        p = min(cfg.p_max, max(cfg.p_min, 1 / (1 + math.exp(-(strength - cfg.z_midpoint) * cfg.z_slope))))
        cell_px = 8 * cfg.cell_blocks
        evidence: dict[str, Any] = {
            "crop": [int(left), int(top), int(g.shape[1]), int(g.shape[0])],
            "grid_offset": [int(ox), int(oy)],
            "estimated_steps": [int(s) for s in steps],
            "median_misfit": round(float(np.median(cell_misfit[cell_valid])), 4),
            "region_z": round(strength, 3),
            "region_px": [int(left + ox + (cx + 1) * cell_px), int(top + oy + (cy + 1) * cell_px)],
        }
        if p >= 0.5:
            x, y = evidence["region_px"]
            reasons = [
                Reason(
                    "jpeg_local_misfit",
                    f"Blocks around ({x}, {y}) px do not fit the JPEG compression of the rest of the image (robust "
                    f"z = {strength:.1f}), as a piece pasted from another picture would.",
                    Category.MANIPULATED,
                )
            ]
        else:
            reasons = [
                Reason("jpeg_local_consistent", "Every region fits the image's JPEG compression.", Category.INFO)
            ]
        heat = np.zeros((h // cell_px + 1, w // cell_px + 1), np.float32)
        y0, x0 = (top + oy) // cell_px, (left + ox) // cell_px
        hh, ww = min(z.shape[0], heat.shape[0] - y0), min(z.shape[1], heat.shape[1] - x0)
        heat[y0 : y0 + hh, x0 : x0 + ww] = np.where(cell_valid, z, 0)[:hh, :ww]
        artifact = Artifact("jpeg_local_heatmap.png", "image/png", heatmap_png(heat, w, h, lo=0.0, hi=8.0))
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence, artifacts=[artifact])


def grid_offset(g: np.ndarray, axis: int) -> int:
    """The phase (mod 8) where differences across `axis` jump: JPEG block borders. `g` holds pixel values 0..255
    (uint8, or a float copy of them)."""
    if g.dtype == np.uint8:
        profile = _difference_profile(g, axis)
    else:
        d = np.abs(np.diff(g, axis=1 - axis if axis == 0 else 1)) if axis == 1 else np.abs(np.diff(g, axis=0))
        profile = _integer_median(d, axis=0) if axis == 1 else _integer_median(d, axis=1)
        profile = profile + np.mean(d, axis=0 if axis == 1 else 1)  # the median is 0 on smooth photos: add the mean
    n = len(profile) // 8 * 8
    energy = profile[:n].reshape(-1, 8).mean(axis=0)
    # A difference at index i is between pixels i and i+1: a border before pixel 8k+o shows at i = 8k+o-1.
    return int((int(np.argmax(energy)) + 1) % 8)


def _difference_profile(u: np.ndarray, axis: int) -> np.ndarray:
    """grid_offset's profile (median plus mean of |pixel differences| across `axis`, per column or row) of uint8
    pixels: the same float32 numbers as from a float copy (the sums of whole numbers are exact), ~2x faster."""
    lines = np.ascontiguousarray(u.T) if axis == 1 else u  # differences between neighbouring lines
    d = cv2.absdiff(lines[1:], lines[:-1])  # one row per border position, its differences contiguous
    n = d.shape[1]
    median = _row_medians(d)
    mean = d.sum(axis=1, dtype=np.int32).astype(np.float32) / np.float32(n)
    return np.asarray(median + mean, np.float32)


def _integer_median(d: np.ndarray, axis: int) -> np.ndarray:
    """`np.median(d, axis)` (float32) of a float32 array holding whole numbers 0..255, as pixel differences do.

    Sorting the values as bytes (OpenCV sorts each row in place) is ~5x faster than numpy's float partition,
    and the middle values of whole numbers, averaged, are exactly what np.median returns.
    """
    return _row_medians(np.ascontiguousarray((d if axis == 1 else d.T).astype(np.uint8)))


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """np.median of each row of the uint8 `rows`, as float32: the rows sorted as bytes (OpenCV), then the mean of
    the middle two (the middle one for an odd length), as np.median takes it."""
    ordered = cv2.sort(rows, cv2.SORT_EVERY_ROW | cv2.SORT_ASCENDING)
    n = ordered.shape[1]
    return (ordered[:, (n - 1) // 2].astype(np.float32) + ordered[:, n // 2].astype(np.float32)) / np.float32(2)


def clipped_blocks(g: np.ndarray) -> np.ndarray:
    """The 8x8 blocks of `g` (pixel values, uint8 or float) holding a pixel at 0, 1, 254 or 255."""
    by, bx = g.shape[0] // 8, g.shape[1] // 8
    if g.dtype == np.uint8 and by and bx:
        return _any_per_block(cv2.bitwise_or(cv2.inRange(g, 0, 1), cv2.inRange(g, 254, 255)), by, bx)
    blocks = g[: by * 8, : bx * 8].reshape(by, 8, bx, 8)
    return np.asarray(((blocks <= 1) | (blocks >= 254)).any(axis=(1, 3)), bool)


def _any_per_block(mask: np.ndarray, by: int, bx: int) -> np.ndarray:
    """Whether each of the `by` x `bx` 8x8 blocks of the 0/255 uint8 `mask` has a pixel set. A block's mean is
    >= 255/64 when any pixel is set, so OpenCV's area resize is an exact "any", without cutting out the blocks."""
    return np.asarray(cv2.resize(mask[: by * 8, : bx * 8], (bx, by), interpolation=cv2.INTER_AREA) > 0)


def clipped_colour_blocks(
    media: MediaInput, origin: tuple[int, int], shape: tuple[int, int], margin: int = 1
) -> np.ndarray:
    """Blocks (of `shape`, from `origin` in the image) where any colour channel is within `margin` of 0 or 255
    (blocks reaching past the image count as clipped, as the black a crop pads them with would)."""
    x, y = origin
    out = np.zeros(shape, bool)
    try:
        # A lossless colour file's RGB pixels come with the shared decode (its luminance was computed from them);
        # a JPEG's are decoded here (only double_jpeg asks, so no full-size copy is kept).
        rgb = media.decoded.rgb
        if rgb is None:
            rgb = _colour_pixels(media)
    except DECODE_ERRORS:
        return out
    if rgb is None:
        return out  # a grey image's channels are its luminance, which clipped_blocks already checks
    part = rgb[y : y + shape[0] * 8, x : x + shape[1] * 8]
    by, bx = min(shape[0], part.shape[0] // 8), min(shape[1], part.shape[1] // 8)
    out[by:, :] = out[:, bx:] = True
    if by and bx:
        inside = cv2.inRange(part[: by * 8, : bx * 8], (margin + 1,) * 3, (254 - margin,) * 3)
        out[:by, :bx] = _any_per_block(cv2.bitwise_not(inside), by, bx)
    return out


def _colour_pixels(media: MediaInput) -> np.ndarray | None:
    """The image as RGB uint8, or None for a greyscale one."""
    with media.open_image() as image:
        if image.mode == "L":
            return None
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)[:, None]
    i = np.arange(8)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix()


def grid_block_dct(media: MediaInput, g: np.ndarray, oy: int, ox: int) -> np.ndarray:
    """`block_dct(g[oy:, ox:])`, computed once per analysis: jpeg_local and double_jpeg both take it of the same
    grid-aligned centre crop. `g` is the float32 `grid_centre_crop` of the luma, so its shape names the crop."""
    return media.shared(("grid_block_dct", g.shape, oy, ox), lambda: block_dct(g[oy:, ox:]))


def block_dct(g: np.ndarray) -> np.ndarray:
    """The 8x8 DCT-II of every block of `g` on its grid, (block row, block column, u, v) (a strided view)."""
    by, bx = g.shape[0] // 8, g.shape[1] // 8
    x = g[: by * 8, : bx * 8] - 128.0
    # D B D^T as two matrix products over the whole image, with no copy of the blocks in between: along every
    # block's rows at once (a flat product: rows of 8 pixels are contiguous), then along its columns (one
    # product per row of blocks). The same sums as transforming block by block, ~3x faster than cutting blocks.
    rows = (x.reshape(-1, 8) @ _DCT.T).reshape(by, 8, bx * 8)
    return np.matmul(_DCT, rows).reshape(by, 8, bx, 8).transpose(0, 2, 1, 3)


def estimate_step(c: np.ndarray, cfg: JpegLocalConfig) -> int:
    """The largest step q on which the coefficients sit (1 when none does)."""
    best = 1
    if c.size > 20000:  # the periodicity is clear from a sample; every block costs 40 trial steps otherwise
        c = c[:: c.size // 20000 + 1]
    # cos(2 pi c / q) is even in c, so the magnitudes are ordered once by floor(2 |c|) (|c| >= q / 2 exactly when
    # that is >= q) and each trial step takes its coefficients as a tail slice: the same values as picking them
    # out of `c` 39 times, summed in another order.
    magnitudes = np.abs(c)
    bucket = np.minimum(2 * magnitudes, cfg.max_step + 1).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")  # a radix sort of bytes
    angles = 2 * np.pi * magnitudes[order]
    starts = np.searchsorted(bucket[order], np.arange(2, cfg.max_step + 1), side="left")
    scratch = np.empty_like(angles)  # cos(angle / q), in place: the mean of np.cos(big / q) without temporaries
    for q, start in zip(range(2, cfg.max_step + 1), starts.tolist(), strict=True):
        n = angles.size - start
        if n < 50:
            break
        trial = scratch[:n]
        np.divide(angles[start:], q, out=trial)
        np.cos(trial, out=trial)
        if float(np.add.reduce(trial) / n) >= cfg.min_periodicity:
            best = q
    return best


def _block_misfit(values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block: mean (1 - cos(2 pi c / q)) over its non-zero coefficients, and how many there were.

    In float32, as the coefficients are (integer steps against float64 made it a float64 cosine, ~5x slower; the
    misfit moves by < 1e-6).
    """
    steps = steps.astype(np.float32)
    informative = np.abs(values) >= steps / 2
    miss = (1 - np.cos(np.float32(2 * np.pi) * values / steps)) * informative
    count = informative.sum(axis=2)
    return miss.sum(axis=2) / np.maximum(count, 1), count.astype(np.float32)


def _cells(misfit: np.ndarray, count: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    by, bx = misfit.shape[0] // k * k, misfit.shape[1] // k * k
    weight = np.where(count >= 2, count, 0.0)[:by, :bx]
    num = (misfit[:by, :bx] * weight).reshape(by // k, k, bx // k, k).sum(axis=(1, 3))
    den = weight.reshape(by // k, k, bx // k, k).sum(axis=(1, 3))
    return num / np.maximum(den, 1e-6), den >= 2 * k
