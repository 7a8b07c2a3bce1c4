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
    side_y, side_x = ty * 8 * tile_blocks, tx * 8 * tile_blocks
    x = np.ascontiguousarray(g[: side_y + 7, : side_x + 7]) - 128.0
    rows = {v: cv2.filter2D(x, cv2.CV_32F, DCT[v][None, :], anchor=(0, 0)) for v in {v for _, v in FREQUENCIES}}
    # |c| of the block whose top-left pixel is (y, x), arranged (tile row, tile col, y mod 8, x mod 8, frequency
    # and blocks of the tile at that offset) so every candidate step is one pass over contiguous memory.
    values = np.stack(
        [
            np.abs(cv2.filter2D(rows[v], cv2.CV_32F, DCT[u][:, None], anchor=(0, 0))[:side_y, :side_x])
            for u, v in FREQUENCIES
        ]
    )
    t = tile_blocks
    # Every other block row of each tile: half the work, and the lattice of a paste spans many rows anyway.
    values = values.reshape(len(FREQUENCIES), ty, t, 8, tx, t, 8)[:, :, ::2].transpose(1, 4, 3, 6, 0, 2, 5)
    values = np.ascontiguousarray(values).reshape(ty, tx, 8, 8, len(FREQUENCIES), -1)
    best = np.full((ty, tx, 8, 8), -np.inf, np.float32)
    phase = np.empty_like(values)
    rows, cols = np.array(FREQUENCIES).T
    for quality in QUALITIES:
        steps = ijg_table(quality)[rows, cols][:, None]  # (F, 1)
        big = values >= steps / 2
        n = np.count_nonzero(big, axis=(-2, -1))
        np.multiply(values, np.float32(2 * np.pi) / steps, out=phase)
        np.cos(phase, out=phase)
        np.multiply(phase, big, out=phase)  # values under half a step do not count
        z = phase.sum(axis=(-2, -1)) / np.sqrt(np.maximum(n, 1) / 2)  # cos of a uniform phase has variance 1/2
        best = np.maximum(best, np.where(n >= min_values, z, -np.inf))
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
