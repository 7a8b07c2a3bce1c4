"""Off-grid (non-aligned) JPEG traces: regions whose own 8x8 lattice is not the image's (double_jpeg's second map).

A piece pasted from another photo was JPEG-compressed on that photo's grid. Placed at an arbitrary offset, 63 of
64 times its blocks straddle the host's: transformed on *its own* grid, its DCT coefficients still sit near
multiples of its quantisation steps (NA-DJPG, in the manner of Bianchi & Piva, IEEE TIFS 2012), which nothing else
in the image does. So, for every one of the 64 block offsets at once (separable 8-tap DCT filters give the
coefficient of the block starting at every pixel), per 64 px tile and for the lowest AC frequencies (0,1), (1,0):
the integer periodicity z = sum cos(2 pi c / q) / sqrt(n / 2) over the n values |c| >= q / 2, best over the
steps q of candidate IJG qualities 50-88; each offset's median over the tiles is taken off (a whole image cropped
off its grid, or a periodic texture, lifts every tile alike); offsets within one pixel of the host grid on both
axes are left out (the host's own lattice still shows there). The score is the strongest 2x2-tile region at one offset.

Sees: pastes of ~100 px or more whose earlier compression was coarse enough to survive what came after - plain
lossless saves, or a last JPEG finer than the paste's (pasted q60-80 under a q90 save). Misses: a paste whose
lattice was re-quantised away by a last JPEG as coarse as its own or coarser, pastes aligned with the host grid
(1 in 64) or within a pixel of it on both axes (9 in 64 are not looked at), small or feathered pastes, pastes
from never-compressed sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from analysis.detectors.jpeg import DCT

FREQUENCIES = ((0, 1), (1, 0))  # (row, column): the largest coefficients, the clearest lattice
# Candidate qualities of the paste's compression, IJG tables: steps 11-12 (q50) down to 3 (q88) at these
# frequencies. Finer ones rarely survive what comes after (a later save's rounding is a step or two).
QUALITIES = (50, 55, 60, 65, 70, 75, 80, 84, 88)

# The IJG (libjpeg) luminance table at quality 50 (ITU T.81 Annex K), natural order: what Pillow, libjpeg-turbo
# and most software write, scaled by quality.
IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float32,
)


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes at `quality` (1-100), natural order."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((IJG_LUMA * scale + 50) / 100), 1, 255).astype(np.float32)


@dataclass(frozen=True)
class OffGrid:
    strength: float  # z of the strongest 2x2-tile region at one non-host offset
    shift: tuple[int, int]  # that offset (row, column) of the region's block origins, mod 8
    region: tuple[int, int]  # top-left tile (row, column) of the region
    tile_z: np.ndarray  # (tile rows, tile columns): each tile's z at that offset, median over tiles removed
    tile_px: int


def off_grid_evidence(
    g: np.ndarray, host: tuple[int, int], tile_blocks: int = 8, min_values: int = 15
) -> OffGrid | None:
    """The strongest off-grid JPEG lattice of `g` (float luma) against the host grid offset `host` (rows, cols)."""
    h, w = g.shape
    ty, tx = (h - 8) // (8 * tile_blocks), (w - 8) // (8 * tile_blocks)
    if ty < 2 or tx < 2:
        return None
    t, f_count = tile_blocks, len(FREQUENCIES)
    # Every other block row of each tile: half the work, and the lattice of a paste spans many rows anyway.
    per_frequency = (t + 1) // 2 * t
    m = f_count * per_frequency  # values per tile and offset
    # Two tile rows at a time (~0.5 MB of values at 1024 px): they stay in cache through the nine steps, and no
    # full-size temporary is allocated (fresh pages cost as much as the filtering).
    band = 2
    best = np.full((ty, tx * 64), -np.inf)
    values = np.empty((f_count, (t + 1) // 2, t, band, tx, 8, 8), np.float32)
    phase = np.empty((m, band * tx * 64), np.float32)
    big = np.empty((m, band * tx * 64), bool)
    rows, cols = np.array(FREQUENCIES).T
    steps = [ijg_table(quality)[rows, cols] for quality in QUALITIES]
    root = np.sqrt(np.maximum(np.arange(m + 1), 1) / 2)  # cos of a uniform phase has variance 1/2
    count_type = np.uint8 if m <= 255 else np.uint16  # how many of a (tile, offset)'s m values count
    for top in range(0, ty, band):
        k = min(band, ty - top)
        x = g[top * 8 * t : (top + k) * 8 * t + 7, : tx * 8 * t + 7] - np.float32(128.0)
        filtered = {v: cv2.filter2D(x, cv2.CV_32F, DCT[v][None, :], anchor=(0, 0)) for v in set(cols.tolist())}
        for f, (u, v) in enumerate(FREQUENCIES):
            # |c| of the block whose top-left pixel is (y, x), arranged (frequency, block row and column in the
            # tile; tile row and column, y mod 8, x mod 8): one row per value a (tile, offset) sums over.
            c = cv2.filter2D(filtered[v], cv2.CV_32F, DCT[u][:, None], anchor=(0, 0))[: k * 8 * t, : tx * 8 * t]
            np.abs(c.reshape(k, t, 8, tx, t, 8)[:, ::2].transpose(1, 4, 0, 3, 2, 5), out=values[f, :, :, :k])
        n_cols = k * tx * 64
        vals, ph, bg = values.reshape(m, -1)[:, :n_cols], phase[:, :n_cols], big[:, :n_cols]
        out = best[top : top + k].reshape(-1)
        for step in steps:
            for f in range(f_count):
                part = slice(f * per_frequency, (f + 1) * per_frequency)
                np.greater_equal(vals[part], step[f] / 2, out=bg[part])  # values under half a step do not count
                np.multiply(vals[part], np.float32(2 * np.pi) / step[f], out=ph[part])
            n = np.add.reduce(bg.view(np.uint8), axis=0, dtype=count_type)
            np.cos(ph, out=ph)
            np.multiply(ph, bg, out=ph)
            z = _column_sums(ph) / root.take(n)
            z[n < min_values] = -np.inf
            np.maximum(out, z, out=out)
    best = best.reshape(ty, tx, 8, 8)
    valid = np.isfinite(best)
    if int(valid.sum()) < 4 * 64:
        return None
    centred = np.where(valid, best, np.nan)
    with np.errstate(all="ignore"):
        median = np.nanmedian(centred, axis=(0, 1), keepdims=True)
    deviation = np.nan_to_num(centred - median, nan=0.0).astype(np.float32)
    region = (deviation[:-1, :-1] + deviation[1:, :-1] + deviation[:-1, 1:] + deviation[1:, 1:]) / 2.0
    oy, ox = host
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            region[:, :, (oy + dy) % 8, (ox + dx) % 8] = -np.inf
    ry, rx, py, px = np.unravel_index(int(np.argmax(region)), region.shape)
    strength = float(region[ry, rx, py, px])
    if not np.isfinite(strength):
        return None
    return OffGrid(strength, (int(py), int(px)), (int(ry), int(rx)), deviation[:, :, py, px], 8 * tile_blocks)


def _column_sums(a: np.ndarray) -> np.ndarray:
    """The sum of each column of the float32 `a`, bit for bit numpy's own sum of a contiguous row of that length.

    For 8 to 128 values (a multiple of 8) numpy sums a row pairwise: eight running sums, then combined in pairs.
    Here whole rows are added at a time, which is several times faster than summing each short column.
    """
    if a.shape[0] % 8 or not 8 <= a.shape[0] <= 128:
        return np.ascontiguousarray(a.T).sum(axis=1)
    r = a[0:8].copy()
    for i in range(8, a.shape[0], 8):
        r += a[i : i + 8]
    return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
