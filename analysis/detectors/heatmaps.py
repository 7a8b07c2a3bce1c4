"""Shared helpers for localising detectors: block maps -> colour heatmap PNG, and the compact-region score.

A heatmap is a palette PNG with the image's aspect (the image's size, at most ``MAX_SIDE`` a side) in the inferno
colour map, so the dashboard can lay it over the picture the same way for every detector (see
templates/dashboard/item.html: the overlay is stretched to the picture, and the browser smooths it).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

# The maps are of 32 px cells: at 512 px a cell still spans >= 4 heatmap pixels up to a 4096 px image. At 1024 px
# each PNG took ~5 ms to encode (three per analysis: jpeg_local, double_jpeg, noise_residual), at 512 ~1 ms.
MAX_SIDE = 512

# The inferno colour map as a 256-entry RGB palette (OpenCV's map is BGR).
INFERNO_PALETTE: list[int] = [
    int(v)
    for v in cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), cv2.COLORMAP_INFERNO)[0, :, ::-1].ravel()
]


def heatmap_png(values: np.ndarray, width: int, height: int, lo: float = 0.0, hi: float = 1.0) -> bytes:
    """`values` (a block map, any size) scaled from [lo, hi] to the palette, stretched to the image's aspect."""
    factor = min(1.0, MAX_SIDE / max(width, height))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    scaled = np.clip((np.nan_to_num(values.astype(np.float32), nan=lo) - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = cv2.resize((scaled * 255).astype(np.uint8), size, interpolation=cv2.INTER_LINEAR)
    image = Image.frombytes("P", size, np.ascontiguousarray(grey).tobytes())
    image.putpalette(INFERNO_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def robust_z(values: np.ndarray, valid: np.ndarray, floor: float) -> np.ndarray:
    """(x - median) / max(1.4826 MAD, floor) over the valid entries; invalid entries get 0."""
    v = values[valid]
    if v.size == 0:
        return np.zeros_like(values, dtype=np.float32)
    centre = float(np.median(v))
    spread = max(1.4826 * float(np.median(np.abs(v - centre))), floor)
    return np.where(valid, (values - centre) / spread, 0.0).astype(np.float32)


def region_strength(z: np.ndarray, valid: np.ndarray, size: int = 3) -> tuple[float, tuple[int, int]]:
    """The strongest compact region: mean z over `size` x `size` valid blocks, and where (block x, y).

    Averaging over a neighbourhood asks for a *region* that is off, not one odd block (a specular highlight,
    a saturated corner); windows with fewer than half their blocks valid are not considered.
    """
    if min(z.shape) < size:
        return 0.0, (0, 0)
    zs = cv2.blur(np.where(valid, z, 0).astype(np.float32), (size, size), borderType=cv2.BORDER_CONSTANT)
    share = cv2.blur(valid.astype(np.float32), (size, size), borderType=cv2.BORDER_CONSTANT)
    mean = np.where(share >= 0.5, zs / np.maximum(share, 1e-6), -np.inf)
    flat = int(np.argmax(mean))
    y, x = divmod(flat, mean.shape[1])
    best = float(mean[y, x])
    return (best if np.isfinite(best) else 0.0), (int(x), int(y))
