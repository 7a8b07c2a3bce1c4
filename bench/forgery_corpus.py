"""Build the forgery benchmark: a folder of images and `labels.csv` (path,label,subtype,split).

    python bench/forgery_corpus.py --out var/corpus [--photos ../shared/testdata/photos] [--seed 13]

Sources (why these): real camera JPEGs are what forgeries are made of, and splices between *different cameras*
need several cameras. ``--photos`` points at a folder of camera JPEGs; the default is the shared test data's
exif-samples set (34 photos from ~25 cameras, CC BY-SA 4.0, see its LICENSE), used by benchmarks only - the test
suite never reads it. The photographs of the Debian packages ``lomiri-wallpapers-16.04``/``-20.04`` (CC BY 4.0 /
CC BY-SA 4.0) and ``mate-backgrounds`` (GPL-2+) that bench/trust_targets.py lists are added when installed
(``apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds``): larger, sharper photos
from other cameras. scikit-image's bundled colour photos (shipped with a package we already install) complete the
set. Every source is used as it came from the camera (no resize): a
crop of at most ``SIDE`` px, taken on the 8x8 grid so the camera's JPEG traces stay where they were.

What is made, per source photo (every edit starts from the decoded camera JPEG, with a feathered, object-shaped
mask, never a square block):

    authentic/camera     the camera file itself, unchanged
    authentic/resaved    the crop saved twice through the same save chains as the forgeries (JPEG q, PNG, or
                         JPEG-then-PNG): controls must share the format, or a detector could learn the format
    manipulated/copy_move  an object-shaped region cloned elsewhere in the same photo, rotated (-30..30 deg) and
                         scaled (0.8..1.25), feathered edges
    manipulated/splice   an object-shaped region from another camera's photo (first recompressed at its own
                         quality 60..95), feathered edges
    manipulated/resample a region of the same or another photo pasted after a 1.3..2x resize
    generated/upsample   the photo brought down 2-4x and back up by what generators do: transposed convolutions
                         (a small random decoder network), nearest/bilinear zero-insertion, or a learned-looking
                         smoothing chain; these leave the periodic spectral traces of GAN and diffusion decoders

Each manipulated item is saved as JPEG (q 70..95), PNG, or JPEG-then-PNG, drawn per item. The split is by source
photo (a forgery and its control share a split, never a photo across splits): every third source, in a fixed
seeded shuffle, is ``eval``; the rest ``tune``. Detector thresholds may only be set on ``tune``.

Ground truth, beside ``labels.csv``: ``truth.csv`` (per item: ``save`` - the last save chain, or ``camera`` -,
its JPEG ``quality``, and for edits the ``mask`` file and what made it: a splice's ``donor_quality`` and the
paste's own 8x8 offset from the host grid ``shift_x``/``shift_y``, a copy's ``angle``/``scale``, a resample's
``factor``) and ``masks/<label>/<subtype>/<name>.png`` (how much of each pixel was pasted, 0-255, the image's
size). Recording them draws no random numbers, so the images are byte for byte those of a build without them.
``bench/localisation.py`` compares the localising detectors' heatmaps with the masks.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `bench` importable

SIDE = 1024
MIN_SIDE = 256
# ../shared next to the checkout (worktrees sit one level deeper, under wt/)
DEFAULT_PHOTOS = next(
    (p / "shared" / "testdata" / "photos" for p in Path(__file__).resolve().parents[1:4] if (p / "shared").is_dir()),
    None,
)
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "motorcycle_right")
SAVES = ("jpeg", "png", "jpeg_png")


@dataclass
class Source:
    name: str
    rgb: np.ndarray  # decoded camera pixels, cropped on the 8x8 grid
    original: bytes | None  # the camera file, when it is one
    quality_hint: int  # for skimage sources: the quality they are first saved at (they come as PNG)


def load_sources(photos: Path | None) -> list[Source]:
    sources: list[Source] = []
    if photos and photos.is_dir():
        for path in sorted(photos.glob("*.jpg")):
            data = path.read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as image:
                    rgb = np.asarray(image.convert("RGB"))
            except (OSError, ValueError, Image.DecompressionBombError):
                print(f"skipped unreadable {path.name}", file=sys.stderr)
                continue
            if min(rgb.shape[:2]) < MIN_SIDE:
                continue
            sources.append(Source(path.stem, _crop(rgb), data, 0))
    for path in debian_photos():
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        sources.append(Source(f"debian_{path.stem}", _crop(rgb), None, 0))
    from skimage import data as skdata

    for i, name in enumerate(SKIMAGE_PHOTOS):
        if name.startswith("motorcycle"):
            pair = skdata.stereo_motorcycle()
            rgb = pair[0] if name.endswith("left") else pair[1]
        else:
            rgb = getattr(skdata, name)()
        rgb = np.ascontiguousarray(rgb[..., :3])
        # skimage photos come decoded; give them a camera-like first JPEG so they are "JPEG-origin" like the rest
        quality = (92, 85, 95, 88, 90, 80)[i % 6]
        sources.append(Source(f"skimage_{name}", _crop(decode(jpeg(rgb, quality))), None, quality))
    return sources


def debian_photos() -> list[Path]:
    """The photographs of the Debian wallpaper packages bench/trust_targets.py names (installed ones only)."""
    from bench.trust_targets import DEBIAN_PHOTOS

    folder = Path("/usr/share/backgrounds")
    return [folder / name for names in DEBIAN_PHOTOS.values() for name in names if (folder / name).is_file()]


def _crop(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = min(h, SIDE), min(w, SIDE)
    y, x = (h - ch) // 2 // 8 * 8, (w - cw) // 2 // 8 * 8
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=int(quality))
    return buffer.getvalue()


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=3)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def save(rgb: np.ndarray, how: str, quality: int) -> tuple[bytes, str]:
    if how == "jpeg":
        return jpeg(rgb, quality), "jpg"
    if how == "png":
        return png(rgb), "png"
    return png(decode(jpeg(rgb, quality))), "png"


# --- masks and edits -------------------------------------------------------------------------------------------
def object_mask(size: int, rng: np.random.Generator, feather: float) -> np.ndarray:
    """A blob-shaped float mask in [0, 1] of side `size`: a random star polygon, smoothed, edges feathered."""
    n = int(rng.integers(7, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.55, 1.0, n) * (size / 2 - 2 - 2 * feather)
    centre = size / 2
    pts = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], axis=1)
    polygon = np.zeros((size, size), np.uint8)
    cv2.fillPoly(polygon, [np.round(pts).astype(np.int32)], 255)
    closed = cv2.morphologyEx(polygon, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    soft: np.ndarray = closed.astype(np.float32) / 255.0
    if feather > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), feather)
    return soft


@dataclass
class Edit:
    """Where an edit landed and what made it, for ``truth.csv`` and the masks (drawing them takes no random
    numbers, so a corpus built with them is byte for byte the one built without)."""

    mask: np.ndarray  # float32 in [0, 1], the image's size: how much of each pixel is pasted
    params: dict[str, int | float]


def _record(
    edits: list[Edit] | None, shape: tuple[int, ...], mask: np.ndarray, y: int, x: int, **params: int | float
) -> None:
    if edits is None:
        return
    full = np.zeros(shape[:2], np.float32)
    s = mask.shape[0]
    full[y : y + s, x : x + s] = mask
    edits.append(Edit(full, params))


def blend(base: np.ndarray, patch: np.ndarray, mask: np.ndarray, y: int, x: int) -> np.ndarray:
    out = base.astype(np.float32).copy()
    s = mask.shape[0]
    m = mask[..., None]
    out[y : y + s, x : x + s] = m * patch.astype(np.float32) + (1 - m) * out[y : y + s, x : x + s]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _region_size(shape: tuple[int, ...], rng: np.random.Generator) -> int:
    return int(min(shape[:2]) * rng.uniform(0.16, 0.3))


def _textured_spot(
    rgb: np.ndarray, size: int, rng: np.random.Generator, avoid: tuple[int, int] | None
) -> tuple[int, int]:
    """The most textured of a dozen random spots (an object, not a patch of sky: a cloned sky patch is invisible to
    anyone), away from `avoid`. Texture is the mean gradient magnitude inside the spot's central part."""
    h, w = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    best, best_score = (0, 0), -1.0
    q = size // 4
    tries = 0
    while tries < 12:
        y, x = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
        if avoid and abs(y - avoid[0]) < size * 1.1 and abs(x - avoid[1]) < size * 1.1:
            continue
        tries += 1
        score = float(energy[y + q : y + size - q, x + q : x + size - q].mean())
        if score > best_score:
            best, best_score = (y, x), score
    return best


def _free_spot(rgb: np.ndarray, size: int, rng: np.random.Generator, avoid: tuple[int, int]) -> tuple[int, int]:
    h, w = rgb.shape[:2]
    for _ in range(100):
        y, x = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
        if abs(y - avoid[0]) >= size * 1.1 or abs(x - avoid[1]) >= size * 1.1:
            return y, x
    return (avoid[0] + size + 8) % (h - size), (avoid[1] + size + 8) % (w - size)


def copy_move(rgb: np.ndarray, rng: np.random.Generator, edits: list[Edit] | None = None) -> np.ndarray:
    size = _region_size(rgb.shape, rng)
    angle = float(rng.uniform(-30, 30)) if rng.random() < 0.6 else 0.0
    scale = float(rng.uniform(0.8, 1.25)) if rng.random() < 0.5 else 1.0
    sy, sx = _textured_spot(rgb, size, rng, None)
    ty, tx = _free_spot(rgb, size, rng, (sy, sx))
    # The patch: the source region rotated and scaled about its centre.
    c = (sx + size / 2, sy + size / 2)
    m = cv2.getRotationMatrix2D(c, angle, scale)
    m[:, 2] += (tx - sx, ty - sy)
    moved = cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    patch = moved[ty : ty + size, tx : tx + size]
    mask = object_mask(size, rng, float(rng.uniform(1.0, 4.0)))
    _record(edits, rgb.shape, mask, ty, tx, angle=round(angle, 2), scale=round(scale, 3))
    return blend(rgb, patch, mask, ty, tx)


def splice(rgb: np.ndarray, donor: np.ndarray, rng: np.random.Generator, edits: list[Edit] | None = None) -> np.ndarray:
    size = _region_size(rgb.shape, rng)
    donor_quality = int(rng.integers(60, 96))
    donor = decode(jpeg(donor, donor_quality))
    size = min(size, min(donor.shape[:2]) - 1)
    dy, dx = _textured_spot(donor, size, rng, None)
    ty, tx = int(rng.integers(0, rgb.shape[0] - size)), int(rng.integers(0, rgb.shape[1] - size))
    patch = donor[dy : dy + size, dx : dx + size]
    mask = object_mask(size, rng, float(rng.uniform(1.0, 4.0)))
    # The paste's own 8x8 lattice, offset from the host's (donor crops are on the donor's grid).
    _record(edits, rgb.shape, mask, ty, tx, donor_quality=donor_quality, shift_x=(tx - dx) % 8, shift_y=(ty - dy) % 8)
    return blend(rgb, patch, mask, ty, tx)


def resample_paste(
    rgb: np.ndarray, donor: np.ndarray, rng: np.random.Generator, edits: list[Edit] | None = None
) -> np.ndarray:
    size = _region_size(rgb.shape, rng)
    factor = float(rng.uniform(1.3, 2.0))
    small = max(16, int(size / factor))
    src = donor if rng.random() < 0.5 else rgb
    sy, sx = _textured_spot(src, small, rng, None)
    piece = cv2.resize(src[sy : sy + small, sx : sx + small], (size, size), interpolation=cv2.INTER_CUBIC)
    ty, tx = int(rng.integers(0, rgb.shape[0] - size)), int(rng.integers(0, rgb.shape[1] - size))
    mask = object_mask(size, rng, float(rng.uniform(1.0, 3.0)))
    _record(edits, rgb.shape, mask, ty, tx, factor=round(factor, 3))
    return blend(rgb, piece, mask, ty, tx)


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)


def upsample_generated(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A photo through a generator-like decoder: down by 2-4x, then up by stride-2 steps that leave traces."""
    factor = int(rng.choice([2, 4]))
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // factor, h // factor), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    kind = str(rng.choice(["transposed_conv", "nearest_conv", "bilinear_conv"]))
    x = small
    for _ in range(int(np.log2(factor))):
        up = np.zeros((x.shape[0] * 2, x.shape[1] * 2, 3), np.float32)
        if kind == "transposed_conv":
            # Zero insertion then a random 3x3 / 4x4 kernel per channel: the checkerboard of transposed convolution.
            up[::2, ::2] = x
            k = rng.normal(0, 1, (4, 4)).astype(np.float32) + 1.0
            k *= 4.0 / k.sum()
        elif kind == "nearest_conv":
            up = np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)
            k = rng.normal(0, 0.3, (3, 3)).astype(np.float32) + 1.0
            k /= k.sum()
        else:
            up = cv2.resize(x, (x.shape[1] * 2, x.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
            k = rng.normal(0, 0.3, (3, 3)).astype(np.float32) + 1.0
            k /= k.sum()
        x = _conv(up, k)
        # A random 1x1 channel mix with a ReLU-like soft clip, as a decoder layer would apply.
        mix = np.eye(3, dtype=np.float32) + rng.normal(0, 0.05, (3, 3)).astype(np.float32)
        x = np.clip(x @ mix.T, 0, 1.2)
    out = np.clip(x * 255.0, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[: h // factor * factor, : w // factor * factor]), kind


# --- the corpus -------------------------------------------------------------------------------------------------
@dataclass
class Row:
    path: str
    label: str
    subtype: str
    split: str


def splits(sources: list[Source], seed: int) -> dict[str, str]:
    order = sorted(sources, key=lambda s: hashlib.sha256(f"{seed}:{s.name}".encode()).hexdigest())
    return {s.name: ("eval" if i % 3 == 0 else "tune") for i, s in enumerate(order)}


TRUTH_FIELDS = (
    "path",
    "split",
    "save",
    "quality",
    "mask",
    "donor_quality",
    "shift_x",
    "shift_y",
    "angle",
    "scale",
    "factor",
)


def build(out: Path, photos: Path | None, seed: int = 13) -> list[Row]:
    sources = load_sources(photos)
    if len(sources) < 2:
        raise SystemExit("need at least two source photos")
    split_of = splits(sources, seed)
    rows: list[Row] = []
    truth: list[dict[str, str | int | float]] = []
    out.mkdir(parents=True, exist_ok=True)

    def write(
        data: bytes,
        name: str,
        label: str,
        subtype: str,
        source: Source,
        how: str = "",
        quality: int = 0,
        edit: Edit | None = None,
    ) -> None:
        folder = out / label / subtype
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        path = f"{label}/{subtype}/{name}"
        rows.append(Row(path, label, subtype, split_of[source.name]))
        record: dict[str, str | int | float] = {
            "path": path,
            "split": split_of[source.name],
            "save": how or ("camera" if subtype == "camera" else ""),
            "quality": quality if how in ("jpeg", "jpeg_png") else "",
        }
        if edit is not None:
            mask_path = out / "masks" / label / subtype / (Path(name).stem + ".png")
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            mask_path.write_bytes(png(np.round(edit.mask * 255).astype(np.uint8)))
            record["mask"] = str(mask_path.relative_to(out))
            record.update(edit.params)
        truth.append(record)

    for i, source in enumerate(sources):
        rng = np.random.default_rng([seed, i])
        # A donor from another source of the same split, so no pixels cross the split.
        same = [s for s in sources if s is not source and split_of[s.name] == split_of[source.name]]
        donor = same[int(rng.integers(0, len(same)))] if same else sources[(i + 1) % len(sources)]
        base = source.rgb
        if source.original is not None:
            write(source.original, f"{source.name}.jpg", "authentic", "camera", source)

        def saved(rgb: np.ndarray, rng: np.random.Generator = rng) -> tuple[bytes, str, str, int]:
            how = str(rng.choice(SAVES))
            quality = int(rng.integers(70, 96))
            data, ext = save(rgb, how, quality)
            return data, ext, how, quality

        for k in range(2):  # controls through the same save chains as the forgeries, two per photo
            data, ext, how, q = saved(base)
            write(data, f"{source.name}-{k}-{how}.{ext}", "authentic", "resaved", source, how, q)
        for k in range(2):
            edits: list[Edit] = []
            data, ext, how, q = saved(copy_move(base, rng, edits))
            write(data, f"{source.name}-{k}-{how}.{ext}", "manipulated", "copy_move", source, how, q, edits[0])
        edits = []
        data, ext, how, q = saved(splice(base, donor.rgb, rng, edits))
        write(data, f"{source.name}-{donor.name}-{how}.{ext}", "manipulated", "splice", source, how, q, edits[0])
        edits = []
        data, ext, how, q = saved(resample_paste(base, donor.rgb, rng, edits))
        write(data, f"{source.name}-{how}.{ext}", "manipulated", "resample", source, how, q, edits[0])
        for k in range(2):
            fake, kind = upsample_generated(base, rng)
            if rng.random() < 0.5:
                data, ext, how, q = png(fake), "png", "png", 0
            else:
                q = int(rng.integers(88, 97))
                data, ext, how = jpeg(fake, q), "jpg", "jpeg"
            write(data, f"{source.name}-{k}-{kind}.{ext}", "generated", "upsample", source, how, q)

    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "subtype", "split"])
        for row in rows:
            writer.writerow([row.path, row.label, row.subtype, row.split])
    with (out / "truth.csv").open("w", newline="") as handle:
        dict_writer = csv.DictWriter(handle, fieldnames=TRUTH_FIELDS, restval="")
        dict_writer.writeheader()
        dict_writer.writerows(truth)
    return rows


def iter_labels(folder: Path) -> Iterator[Row]:
    with (folder / "labels.csv").open(newline="") as handle:
        for record in csv.DictReader(handle):
            yield Row(record["path"], record["label"], record["subtype"], record["split"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of camera JPEGs")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rows = build(args.out, args.photos, args.seed)
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row.subtype, row.split)] = counts.get((row.subtype, row.split), 0) + 1
    print(f"{len(rows)} items in {args.out}")
    for (subtype, split), n in sorted(counts.items()):
        print(f"  {subtype:10s} {split:5s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
