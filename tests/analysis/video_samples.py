"""Small synthetic videos for the known-video tests: smooth shapes that change every second, so each second's
frame has a distinct, stable PDQ hash, encoded with PyAV."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np


def scene(seed: int, second: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 1000 + second)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    image = np.zeros((height, width, 3), dtype=np.float64)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.08, 0.3)
        colour = rng.uniform(0, 255, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        image[mask] = colour
    return image.astype(np.uint8)


def make_video(
    path: Path,
    *,
    seed: int,
    seconds: int,
    start_second: int = 0,
    size: tuple[int, int] = (192, 144),
    fps: int = 5,
    codec: str = "mpeg4",
    quality: int = 3,
) -> Path:
    """`seconds` seconds of scenes `start_second`.. of `seed`'s sequence (a trimmed copy starts later)."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = cast(av.VideoStream, container.add_stream(codec, rate=fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.options = {"qscale": str(quality)}
        for second in range(start_second, start_second + seconds):
            base = scene(seed, second, 384, 288)
            frame_image = np.asarray(
                __import__("PIL.Image", fromlist=["Image"]).fromarray(base).resize((width, height))
            )
            for _ in range(fps):
                frame = av.VideoFrame.from_ndarray(frame_image, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
