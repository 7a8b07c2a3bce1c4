"""Small real images the analysis tests analyse (scikit-image sample photos)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo_jpeg(name: str = "astronaut", side: int = 256, quality: int = 90) -> bytes:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).resize((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def noise_png(side: int = 128) -> bytes:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((side, side, 3)) * 255).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()
