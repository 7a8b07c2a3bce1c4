"""Faces: how many faces an image shows, with OpenCV's Haar cascades.

Faces are not evidence of manipulation, so the probability is always ``None`` and the reason is
``Category.INFO``. The count routes review (pictures of people go to moderators trained for them, and face
swaps are a manipulation class of their own) and tells other detectors where the sensitive regions are.

Haar cascades are old and cheap: they miss small, tilted and occluded faces and now and then fire on texture.
That is acceptable for routing; the boxes are reported so a moderator can see what was counted.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

# Haar cost grows with pixels and scale steps. On the shared 2-core box a frontal pass at 400 px a side took
# ~200 ms and each profile pass as much again. The frontal pass sees at most 320x320 px worth of pixels
# (the area is capped, not the long side, so a wide picture of two people keeps its faces big enough). The
# "alt2" frontal cascade with 1.25 scale steps and OpenCV's default 3 neighbours costs ~30 ms there, against
# ~50 ms for the "default" cascade at 1.2 / 5, and finds the same faces on the test photos (the default
# cascade at 1.25 steps lost one of two side-by-side faces; alt2 rejects texture well enough at 3 neighbours).
# The frontal window is 24 px: faces under ~7 % of a square picture's side are missed, which routing can
# live with.
ANALYSIS_MAX_SIDE = 320  # of a square image; other shapes keep the same pixel count
MIN_FACE_PX = 24
# Profiles are looked for on a smaller copy (and on its mirror, since the cascade knows one direction): the
# profile cascade is ~2x as expensive as the frontal one, and profile faces that matter for routing are large.
# At 128 px the two passes cost ~10 ms (~25 ms at 160 px); faces over ~16 % of the longer side are found.
PROFILE_MAX_SIDE = 128
PROFILE_MIN_FACE_PX = 20
MIN_IMAGE_SIDE = 24
SCALE_FACTOR = 1.25
PROFILE_SCALE_FACTOR = 1.2
# The profile cascade fires on texture (fur, foliage, fabric) more readily, so it needs 5 neighbours; much
# higher and coarse scale steps stop finding small faces (two people in a 1024 px frame).
MIN_NEIGHBORS = 3
PROFILE_MIN_NEIGHBORS = 5
OVERLAP_IOU = 0.3

_FRONTAL = "haarcascade_frontalface_alt2.xml"
_PROFILE = "haarcascade_profileface.xml"

# CascadeClassifier is not safe to share between threads, and the pipeline runs every detector in a fresh
# thread, so a thread-local cache reloaded both XML cascades (~90 ms) on every analysis. A small pool instead:
# a run takes a set, uses it alone and puts it back.
_pool: queue.SimpleQueue[dict[str, cv2.CascadeClassifier]] = queue.SimpleQueue()


def _load_cascades() -> dict[str, cv2.CascadeClassifier]:
    cascades = {}
    for key, filename in (("frontal", _FRONTAL), ("profile", _PROFILE)):
        # cv2.data is a plain Python submodule the bundled type stubs do not declare.
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + filename)  # type: ignore[attr-defined]
        if classifier.empty():
            raise RuntimeError(f"OpenCV Haar cascade {filename} could not be loaded")
        cascades[key] = classifier
    return cascades


@contextmanager
def _cascades() -> Iterator[dict[str, cv2.CascadeClassifier]]:
    try:
        cascades = _pool.get_nowait()
    except queue.Empty:
        cascades = _load_cascades()
    try:
        yield cascades
    finally:
        _pool.put(cascades)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def _merge(boxes: list[tuple[tuple[int, int, int, int], str]]) -> list[tuple[tuple[int, int, int, int], str]]:
    """Drop boxes that overlap a larger one: frontal and profile cascades often find the same face."""
    kept: list[tuple[tuple[int, int, int, int], str]] = []
    for box, source in sorted(boxes, key=lambda item: item[0][2] * item[0][3], reverse=True):
        if all(_iou(box, other) < OVERLAP_IOU for other, _ in kept):
            kept.append((box, source))
    return kept


def detect_faces(grey: np.ndarray) -> list[tuple[tuple[int, int, int, int], str]]:
    """Face boxes (x, y, w, h) in pixel units of `grey`, each with the cascade that found it."""
    equalised = cv2.equalizeHist(grey)
    options: dict[str, Any] = {
        "scaleFactor": SCALE_FACTOR,
        "minNeighbors": MIN_NEIGHBORS,
        "minSize": (MIN_FACE_PX, MIN_FACE_PX),
    }
    found: list[tuple[tuple[int, int, int, int], str]] = []
    height, width = equalised.shape
    factor = min(1.0, PROFILE_MAX_SIDE / max(height, width))
    small = (
        cv2.resize(
            equalised, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA
        )
        if factor < 1.0
        else equalised
    )
    profile_options: dict[str, Any] = {
        "scaleFactor": PROFILE_SCALE_FACTOR,
        "minNeighbors": PROFILE_MIN_NEIGHBORS,
        "minSize": (PROFILE_MIN_FACE_PX, PROFILE_MIN_FACE_PX),
    }
    with _cascades() as cascades:
        for x, y, w, h in cascades["frontal"].detectMultiScale(equalised, **options):
            found.append(((int(x), int(y), int(w), int(h)), "frontal"))
        # The profile cascade only knows faces turned one way; run it on the mirror image for the other.
        for mirrored in (False, True):
            image = cv2.flip(small, 1) if mirrored else small
            for x, y, w, h in cascades["profile"].detectMultiScale(image, **profile_options):
                left = small.shape[1] - int(x) - int(w) if mirrored else int(x)
                box = (round(left / factor), round(int(y) / factor), round(int(w) / factor), round(int(h) / factor))
                found.append((box, "profile"))
    return _merge(found)


def _greyscale(media: MediaInput) -> np.ndarray:
    decoded = media.decoded
    luma = decoded.luma
    height, width = luma.shape
    factor = min(1.0, math.sqrt(ANALYSIS_MAX_SIDE**2 / (height * width)))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        luma = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
    # Phones store portraits sideways with an EXIF rotation; Haar cascades only find upright faces.
    return np.ascontiguousarray(decoded.upright(luma), dtype=np.uint8)


class FacesDetector(Detector):
    """Counts faces with OpenCV Haar cascades (frontal and both profiles). Informational only."""

    name: ClassVar[str] = "faces"
    version: ClassVar[str] = "1.2"
    kinds: ClassVar[frozenset[str]] = frozenset({"image"})
    time_budget_s: ClassVar[float] = 5.0

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            grey = _greyscale(media)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be decoded.", error=str(exc))
        height, width = grey.shape
        if min(height, width) < MIN_IMAGE_SIDE:
            return DetectorOutput.abstain(
                AbstainCode.TOO_SMALL, f"The image is too small to look for faces ({width}x{height})."
            )

        faces = detect_faces(grey)
        boxes = [
            {
                "x": round(x / width, 4),
                "y": round(y / height, 4),
                "w": round(w / width, 4),
                "h": round(h / height, 4),
                "cascade": source,
            }
            for (x, y, w, h), source in sorted(faces, key=lambda item: (item[0][0], item[0][1]))
        ]
        count = len(boxes)
        text = "No faces were found." if count == 0 else f"{count} face{'s' if count != 1 else ''} found."
        return DetectorOutput(
            status="ok",
            probability=None,
            reasons=[Reason("face_count", text, Category.INFO)],
            evidence={"face_count": count, "boxes": boxes, "analysed_size": [width, height]},
        )
