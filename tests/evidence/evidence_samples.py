"""A small real photo for the evidence tests (scikit-image's astronaut)."""

from __future__ import annotations

import io

from PIL import Image


def photo_jpeg(side: int = 192, quality: int = 90) -> bytes:
    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
