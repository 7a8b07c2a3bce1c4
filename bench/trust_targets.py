"""Issue 12's targets on real camera photos and on generator-declared AI images, through `evaluate_detectors`.

    python bench/trust_targets.py [--keep DIR] [--no-shared] [--json]

Builds a labelled corpus (labels.csv, the `--corpus` format) and runs `manage.py evaluate_detectors --corpus` on
it against a fresh test database (the default policies), then prints the four figures with their targets:

* benign camera photos (label authentic): <= 10 % escalated, <= 3 % to two reviewers, <= 2 % likely_manipulated;
* generator-declared AI images (label generated): 100 % outside likely_authentic / no_manipulation_found.

Camera photos, each copied the way platforms serve uploads (EXIF stripped, re-encoded): `feed` (long side 2048,
q85), `square` (centre square, 1080 px, q80) and `chat` (long side 1600, q70):

* Debian packages `lomiri-wallpapers-16.04`, `lomiri-wallpapers-20.04` (Ubuntu's community wallpaper contest
  photos; CC BY 4.0 / CC BY-SA 4.0, per file in /usr/share/doc/<package>/copyright), `mate-backgrounds`
  (nature/ photos; GPL-2+) and `plasma-workspace-wallpapers` (KDE; GPL-2+). `apt-get install
  lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers` first; missing
  packages are skipped and said so. Only photographs are taken (the lists below, picked by looking at every
  image: the packages also hold paintings, renders and abstract art).
* scikit-image's bundled colour photos (astronaut, coffee, chelsea, rocket, the two motorcycle views; public
  domain / CC0 as listed in skimage.data's docstrings).
* with ../shared/testdata present (benchmarks only, never tests): its photos/ and exif/ camera files
  (their LICENSE files: public domain, CC0, MIT-licensed test corpora).

Generated images (made here, never third-party AI images): camera photos signed with c2pa-python and a throwaway
CA declaring `trainedAlgorithmicMedia` in the active manifest, the same declaration held only in a parent
ingredient (ChatGPT's shape), `compositeWithTrainedAlgorithmicMedia`; IPTC DigitalSourceType in XMP and in
IPTC-IIM; "Made with Google AI" in the IIM credit; an AUTOMATIC1111 `parameters` PNG; and, with
../shared/testdata, its generator-metadata/ files (front-ends' own output).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings_test")

DEBIAN_PHOTOS = {
    "lomiri-wallpapers-16.04": [
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg", "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg",
    ],
    "lomiri-wallpapers-20.04": ["Kleiber_by_Lukas_Baubkus.jpg"],
    "mate-backgrounds": [
        "mate/nature/Aqua.jpg", "mate/nature/Blinds.jpg", "mate/nature/Dune.jpg", "mate/nature/FreshFlower.jpg",
        "mate/nature/Garden.jpg", "mate/nature/GreenMeadow.jpg", "mate/nature/LadyBird.jpg",
        "mate/nature/RainDrops.jpg", "mate/nature/Storm.jpg", "mate/nature/TwoWings.jpg", "mate/nature/Wood.jpg",
        "mate/nature/YellowFlower.jpg",
    ],
}  # fmt: skip
# plasma-workspace-wallpapers (GPL-2+): the photographs among KDE's wallpapers, largest JPEG of each.
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "OneStandsOut", "Path", "summer_1am")  # fmt: skip
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle")
SHARED = Path(os.environ.get("HLEKKR_TESTDATA") or ROOT.parent / "shared" / "testdata")
PLATFORMS = {"feed": (2048, 85, False), "square": (1080, 80, True), "chat": (1600, 70, False)}
SD_PARAMETERS = (
    "portrait, detailed\nNegative prompt: blurry\nSteps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: {seed}, "
    "Size: 1024x1024, Model: sdxl"
)
TARGETS = {
    "authentic_escalation_rate": ("<=", 0.10),
    "authentic_two_reviewer_rate": ("<=", 0.03),
    "authentic_called_manipulated_rate": ("<=", 0.02),
    "generated_outside_authentic_and_nothing_found_rate": (">=", 1.0),
}


def camera_sources(use_shared: bool) -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, RGB array) of every camera photo available here, and notes on what was missing."""
    import numpy as np
    from PIL import Image, ImageOps
    from skimage import data

    photos: list[tuple[str, Any]] = []
    notes: list[str] = []
    for package, names in DEBIAN_PHOTOS.items():
        found = [Path("/usr/share/backgrounds") / n for n in names if (Path("/usr/share/backgrounds") / n).is_file()]
        if not found:
            notes.append(f"Debian package {package} not installed: its {len(names)} photos skipped")
        for path in found:
            photos.append((f"debian/{path.stem}", np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))))
    plasma = [Path("/usr/share/wallpapers") / name / "contents" / "images" for name in PLASMA_PHOTOS]
    plasma = [folder for folder in plasma if folder.is_dir()]
    if not plasma:
        notes.append(
            f"Debian package plasma-workspace-wallpapers not installed: its {len(PLASMA_PHOTOS)} photos skipped"
        )
    for folder in plasma:
        largest = max(folder.glob("*.jpg"), key=lambda p: p.stat().st_size)
        photos.append((f"debian/{folder.parent.parent.name}", np.asarray(Image.open(largest).convert("RGB"))))
    for name in SKIMAGE_PHOTOS:
        value = getattr(data, name)()
        for index, array in enumerate(value if isinstance(value, tuple) else (value,)):
            if array.ndim == 3 and array.dtype == np.uint8:  # stereo_motorcycle also returns a disparity map
                photos.append((f"skimage/{name}{index or ''}", np.ascontiguousarray(array[..., :3])))
    if use_shared and SHARED.is_dir():
        for path in sorted([*(SHARED / "photos").glob("*.jpg"), *(SHARED / "exif").glob("*.jpg")]):
            if path.name.startswith("invalid"):
                continue
            try:
                image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            except OSError:
                continue
            photos.append((f"shared/{path.stem}", np.asarray(image)))
    elif use_shared:
        notes.append(f"{SHARED} not found: shared camera photos skipped")
    return photos, notes


def platform_copy(array: Any, long_side: int, quality: int, square: bool) -> bytes:
    """What a platform serves of an upload: metadata stripped, resized (never up), re-encoded."""
    from PIL import Image

    image = Image.fromarray(array)
    if square:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    scale = long_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def build_corpus(folder: Path, use_shared: bool) -> tuple[dict[str, int], list[str]]:
    from analysis.c2pa_signing import (
        ai_created_actions,
        make_test_ca,
        manifest_definition,
        opened_actions,
        sign_bytes,
    )
    from analysis.evaluation import png

    photos, notes = camera_sources(use_shared)
    rows: list[tuple[str, str, str]] = []

    def add(relative: str, content: bytes, label: str, subtype: str) -> None:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        rows.append((relative, label, subtype))

    for name, array in photos:
        for platform, (side, quality, square) in PLATFORMS.items():
            add(f"authentic/{name}-{platform}.jpg", platform_copy(array, side, quality, square), "authentic", platform)

    generator_ca = make_test_ca("Bench Image Generator")
    app_ca = make_test_ca("Bench Chat App")
    for index, (_name, array) in enumerate(photos[:: max(1, len(photos) // 12)][:12]):
        base = platform_copy(array, 1024, 90, False)
        ai = sign_bytes(base, generator_ca, manifest_definition(ai_created_actions()))
        add(f"generated/c2pa/{index}-active.jpg", ai, "generated", "c2pa_active")
        parent = sign_bytes(base, app_ca, manifest_definition(opened_actions()), parent=ai)
        add(f"generated/c2pa/{index}-parent.jpg", parent, "generated", "c2pa_parent_ingredient")
        composite = sign_bytes(
            base, generator_ca, manifest_definition(ai_created_actions("compositeWithTrainedAlgorithmicMedia"))
        )
        add(f"generated/c2pa/{index}-composite.jpg", composite, "generated", "c2pa_composite")
        add(f"generated/xmp/{index}.jpg", _with_xmp_source_type(base), "generated", "iptc_xmp")
        add(f"generated/iim/{index}.jpg", _with_iim(base, {110: "Made with Google AI"}), "generated", "platform_label")
        params = {"parameters": SD_PARAMETERS.format(seed=index)}
        add(f"generated/sd/{index}.png", png(array[:768, :768], params), "generated", "a1111_parameters")
    if use_shared and (SHARED / "generator-metadata").is_dir():
        for path in sorted((SHARED / "generator-metadata").glob("*.*")):
            if path.suffix.lower() in (".png", ".jpg"):
                add(f"generated/frontends/{path.name}", path.read_bytes(), "generated", "frontend_metadata")

    with (folder / "labels.csv").open("w") as fh:
        fh.write("path,label,subtype,split\n")
        for relative, label, subtype in rows:
            fh.write(f"{relative},{label},{subtype},\n")
    counts = {"camera_photos": len(photos), "authentic_items": sum(r[1] == "authentic" for r in rows)}
    counts["generated_items"] = sum(r[1] == "generated" for r in rows)
    return counts, notes


def _with_xmp_source_type(jpeg: bytes) -> bytes:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        b'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def _with_iim(jpeg: bytes, datasets: dict[int, str]) -> bytes:
    iim = b"".join(
        b"\x1c\x02" + bytes([n]) + len(v.encode()).to_bytes(2, "big") + v.encode() for n, v in datasets.items()
    )
    resource = b"8BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim + (b"\x00" if len(iim) % 2 else b"")
    payload = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default=None, help="build the corpus in this folder and keep it")
    parser.add_argument("--no-shared", action="store_true", help="leave ../shared/testdata out")
    parser.add_argument("--json", action="store_true", help="print the whole evaluation report as JSON")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    # A fresh test database: the default (migrated) scoring and escalation policies, nobody's live data.
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hlekkr-trust-"))
    try:
        counts, notes = build_corpus(folder, use_shared=not args.no_shared)
        out = io.StringIO()
        call_command(
            "evaluate_detectors", "--corpus", str(folder), "--json", "--output", str(folder / "out"), stdout=out
        )
        report = json.loads(out.getvalue())
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
        return 0
    for note in notes:
        print(f"note: {note}")
    print(
        f"corpus: {counts['camera_photos']} camera photos -> {counts['authentic_items']} platform copies; "
        f"{counts['generated_items']} generator-declared images; {report['meta']['seconds']} s"
    )
    print("verdicts:", json.dumps(report["confusion"]["matrix"]))
    missed = 0
    for key, (op, target) in TARGETS.items():
        value = report["targets"][key]
        ok = value is not None and (value <= target if op == "<=" else value >= target)
        missed += not ok
        print(f"{key:<52} {100 * (value or 0):6.1f} %   target {op} {100 * target:.0f} %   {'met' if ok else 'MISSED'}")
    print(f"trust-score AUC generated vs authentic: {report['classes']['generated']['trust_score']['auc']}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
