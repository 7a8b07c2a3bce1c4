"""Metadata detector: what the file says about where it came from.

It reads EXIF (Pillow, with exifread as a fallback for EXIF that Pillow refuses), XMP, PNG text chunks and
JPEG comments, and looks for:

* generator signatures: the Stable Diffusion front-ends' own metadata (AUTOMATIC1111 ``parameters``, also the
  "stealth" copy hidden in the least significant bits of the alpha or colour channels; ComfyUI ``prompt`` /
  ``workflow`` graphs; Fooocus; InvokeAI ``invokeai_metadata`` / ``sd-metadata`` / ``Dream``; NovelAI), generator
  names in software fields (Midjourney, DALL-E, Firefly...) and the IPTC digital source type
  ``trainedAlgorithmicMedia`` in XMP -> ``Category.GENERATED`` with a high probability;
* editing software (GIMP, Photoshop, Lightroom, Snapseed...) -> ``Category.EDITED``: software touched the file,
  which is not evidence of deception, so it only nudges the probability;
* date inconsistencies (capture after modification, dates in the future) and make/model contradictions;
* camera make, model and capture date that agree with each other -> ``Category.AUTHENTIC``, a low probability.

Limits: metadata is trivially stripped or forged. Its *presence* (a generator's parameters, a camera model) is
informative; its *absence* says nothing, so a file without metadata makes the detector abstain. A C2PA manifest
is only noted here; the provenance detector judges it.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from struct import error as struct_error  # Pillow lets it escape on truncated IFD entries
from typing import Any

import numpy as np
from PIL import Image

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

# EXIF tag ids (TIFF/EXIF 2.3).
TAG_PROCESSING_SOFTWARE = 0x000B
TAG_IMAGE_DESCRIPTION = 0x010E
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_SOFTWARE = 0x0131
TAG_DATETIME = 0x0132
TAG_ARTIST = 0x013B
TAG_EXIF_IFD = 0x8769
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_USER_COMMENT = 0x9286
TAG_LENS_MODEL = 0xA434

# Lower-case substrings of software fields -> editor name. Order matters only for the reported name.
EDITING_SOFTWARE: tuple[tuple[str, str], ...] = (
    ("gimp", "GIMP"),
    ("photoshop", "Adobe Photoshop"),
    ("lightroom", "Adobe Lightroom"),
    ("camera raw", "Adobe Camera Raw"),
    ("snapseed", "Snapseed"),
    ("affinity", "Affinity Photo"),
    ("pixelmator", "Pixelmator"),
    ("paint.net", "Paint.NET"),
    ("picasa", "Picasa"),
    ("canva", "Canva"),
    ("picsart", "PicsArt"),
    ("facetune", "Facetune"),
    ("luminar", "Luminar"),
    ("capture one", "Capture One"),
    ("darktable", "darktable"),
    ("rawtherapee", "RawTherapee"),
    ("photopea", "Photopea"),
    ("krita", "Krita"),
    ("imagemagick", "ImageMagick"),
    ("photoscape", "PhotoScape"),
    ("acdsee", "ACDSee"),
    ("corel", "Corel"),
    ("fireworks", "Adobe Fireworks"),
    ("vsco", "VSCO"),
    ("lightroom mobile", "Adobe Lightroom"),
)

# Lower-case substrings of software/creator fields that name an image generator.
GENERATOR_NAMES: tuple[tuple[str, str], ...] = (
    ("midjourney", "Midjourney"),
    ("dall-e", "DALL-E"),
    ("dall·e", "DALL-E"),
    ("dalle", "DALL-E"),
    ("firefly", "Adobe Firefly"),
    ("novelai", "NovelAI"),
    ("stable diffusion", "Stable Diffusion"),
    ("stablediffusion", "Stable Diffusion"),
    ("dreamstudio", "DreamStudio"),
    ("ideogram", "Ideogram"),
    ("leonardo.ai", "Leonardo.Ai"),
    ("bing image creator", "Bing Image Creator"),
    ("made with google ai", "Google Imagen"),
    ("google imagen", "Google Imagen"),
    ("nightcafe", "NightCafe"),
    ("craiyon", "Craiyon"),
    ("runwayml", "Runway"),
)

CAMERA_BRANDS = (
    "canon",
    "nikon",
    "sony",
    "fujifilm",
    "olympus",
    "panasonic",
    "pentax",
    "samsung",
    "apple",
    "kodak",
    "leica",
    "huawei",
    "xiaomi",
    "oneplus",
    "hasselblad",
    "sigma",
    "ricoh",
    "minolta",
    "casio",
)

# IPTC digital source type codes (https://cv.iptc.org/newscodes/digitalsourcetype/).
AI_SOURCE_TYPES = {
    "trainedalgorithmicmedia": 0.95,
    "compositewithtrainedalgorithmicmedia": 0.9,
    "algorithmicmedia": 0.85,
}

STEALTH_SIGNATURES = {
    "stealth_pnginfo": ("alpha", False),
    "stealth_pngcomp": ("alpha", True),
    "stealth_rgbinfo": ("rgb", False),
    "stealth_rgbcomp": ("rgb", True),
}
STEALTH_MAX_BYTES = 1 << 20  # a generous ceiling for decompressed generation parameters

P_GENERATED = 0.95
P_GENERATED_CORROBORATED = 0.97
P_NEUTRAL = 0.2
P_CAMERA = 0.12
P_EDITED = 0.3
P_INCONSISTENT = 0.45
FUTURE_TOLERANCE = timedelta(days=1)  # camera clocks drift and time zones are unknown
ORDER_TOLERANCE = timedelta(minutes=2)

A1111_RE = re.compile(r"(?:^|\n|,\s*)Steps:\s*\d+.*?(?:Sampler|Seed|CFG scale):", re.S)


class MetadataDetector(Detector):
    """Judges an image by its EXIF/XMP/PNG text metadata (see the module docstring)."""

    name = "metadata"
    version = "1.0.0"
    time_budget_s = 5.0

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        try:
            im = media.open_image()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The image could not be opened.", error=str(exc))

        found = _Findings(fmt=im.format or "")
        _read_exif(im, media.data, found)
        _read_xmp(im, found)
        _read_text_chunks(im, found)
        _read_stealth(im, found)
        if b"jumb" in media.data and b"c2pa" in media.data:
            found.c2pa_hint = True

        if not found.has_anything():
            return DetectorOutput.abstain(
                AbstainCode.NO_DATA, "The file carries no readable metadata.", format=found.fmt
            )
        return found.verdict()


class _Findings:
    """Everything read from one file, turned into a verdict by `verdict()`."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.exif: dict[str, str] = {}
        self.text_keys: list[str] = []
        self.generators: list[tuple[str, str]] = []  # (generator, where it was found)
        self.generation_parameters: str = ""
        self.editors: list[tuple[str, str]] = []  # (editor, raw field value)
        self.digital_source_type: str = ""
        self.xmp_fields: dict[str, str] = {}
        self.c2pa_hint = False
        self.exif_error: str = ""

    def has_anything(self) -> bool:
        return bool(self.exif or self.text_keys or self.xmp_fields or self.generators or self.c2pa_hint)

    def add_generator(self, generator: str, where: str, parameters: str = "") -> None:
        self.generators.append((generator, where))
        if parameters and not self.generation_parameters:
            self.generation_parameters = parameters[:1000]

    def check_software_field(self, field_name: str, value: str) -> None:
        low = value.lower()
        for needle, gen in GENERATOR_NAMES:
            if needle in low:
                self.add_generator(gen, field_name)
                return
        for needle, editor in EDITING_SOFTWARE:
            if needle in low:
                if editor not in {e for e, _ in self.editors}:
                    self.editors.append((editor, value))
                return

    def verdict(self) -> DetectorOutput:
        reasons: list[Reason] = []
        make, model = self.exif.get("make", ""), self.exif.get("model", "")
        evidence: dict[str, Any] = {
            "format": self.fmt,
            "make": make or None,
            "model": model or None,
            "software": self.exif.get("software") or self.xmp_fields.get("CreatorTool") or None,
            "capture_date": self.exif.get("datetime_original") or None,
            "modify_date": self.exif.get("datetime") or None,
            "lens": self.exif.get("lens_model") or None,
            "text_chunks": self.text_keys,
            "editing_software": [e for e, _ in self.editors],
            "digital_source_type": self.xmp_fields.get("DigitalSourceType"),
            "c2pa_manifest_present": self.c2pa_hint,
        }
        if self.exif_error:
            evidence["exif_error"] = self.exif_error

        if self.c2pa_hint:
            reasons.append(
                Reason(
                    "c2pa_present",
                    "The file embeds a C2PA manifest; the provenance check judges it.",
                    Category.INFO,
                )
            )

        if self.generators:
            names = list(dict.fromkeys(g for g, _ in self.generators))
            evidence["generator"] = names[0]
            evidence["generators"] = names
            evidence["generator_sources"] = [f"{g}: {w}" for g, w in self.generators]
            if self.generation_parameters:
                evidence["generation_parameters"] = self.generation_parameters
            where = ", ".join(dict.fromkeys(w for _, w in self.generators))
            reasons.append(
                Reason(
                    "generator_signature",
                    f"The metadata carries the signature of the image generator {names[0]} ({where}).",
                    Category.GENERATED,
                )
            )
            p = P_GENERATED_CORROBORATED if len(self.generators) > 1 else P_GENERATED
            if self.digital_source_type in AI_SOURCE_TYPES and len(self.generators) == 1:
                p = AI_SOURCE_TYPES[self.digital_source_type]
            return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence)

        p = P_NEUTRAL
        camera = bool(make and model)
        inconsistencies = self._inconsistencies()
        if camera and not inconsistencies:
            reasons.append(
                Reason(
                    "camera_metadata",
                    f"Camera metadata is present and consistent ({make} {model}).",
                    Category.AUTHENTIC,
                )
            )
            p = P_CAMERA
        if self.editors:
            editor_names = ", ".join(e for e, _ in self.editors)
            reasons.append(
                Reason(
                    "editing_software",
                    f"The file was saved by editing software ({editor_names}); "
                    "an edit is not a manipulation by itself.",
                    Category.EDITED,
                )
            )
            p = P_EDITED
        for code, text in inconsistencies:
            reasons.append(Reason(code, text, Category.MANIPULATED))
        if inconsistencies:
            p = P_INCONSISTENT
            evidence["inconsistencies"] = [c for c, _ in inconsistencies]
        if not reasons:
            reasons.append(Reason("metadata_unremarkable", "The metadata points neither way.", Category.INFO))
        return DetectorOutput(status="ok", probability=p, reasons=reasons, evidence=evidence)

    def _inconsistencies(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        original = _parse_exif_date(self.exif.get("datetime_original", ""))
        modified = _parse_exif_date(self.exif.get("datetime", ""))
        now = datetime.now()  # EXIF dates carry no zone; compare as naive local time with a tolerance
        for label, value in (("capture", original), ("modification", modified)):
            if value is not None and value > now + FUTURE_TOLERANCE:
                out.append(("date_in_future", f"The {label} date {value.isoformat(' ')} lies in the future."))
        if original and modified and original > modified + ORDER_TOLERANCE:
            out.append(
                (
                    "date_order",
                    f"The capture date ({original.isoformat(' ')}) is after the modification date "
                    f"({modified.isoformat(' ')}).",
                )
            )
        make, model = self.exif.get("make", "").lower(), self.exif.get("model", "").lower()
        if make and model:
            make_brands = {b for b in CAMERA_BRANDS if b in make}
            model_brands = {b for b in CAMERA_BRANDS if b in model}
            if make_brands and model_brands and not make_brands & model_brands:
                out.append(
                    (
                        "make_model_mismatch",
                        f"The camera make ({self.exif['make']}) contradicts the model ({self.exif['model']}).",
                    )
                )
        return out


def _clean(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()


def _parse_exif_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # blank, "0000:00:00 00:00:00" or garbage: not a date to reason about


def _decode_user_comment(raw: Any) -> str:
    """EXIF UserComment: 8-byte charset prefix, then ASCII/UTF-16 text (A1111 writes its parameters here)."""
    if isinstance(raw, str):
        return raw.replace("\x00", "").strip()
    if not isinstance(raw, bytes):
        return ""
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # The byte order follows the TIFF header, which we do not have here: pick the one with zero high bytes.
        big = body[0::2].count(0) >= body[1::2].count(0)
        return body.decode("utf-16-be" if big else "utf-16-le", "replace").replace("\x00", "").strip()
    return body.decode("utf-8", "replace").replace("\x00", "").strip()


def _read_exif(im: Image.Image, data: bytes, found: _Findings) -> None:
    fields: dict[str, Any] = {}
    try:
        exif = im.getexif()
        base = dict(exif)
        try:
            sub = dict(exif.get_ifd(TAG_EXIF_IFD))
        except (KeyError, OSError, ValueError, SyntaxError, TypeError):
            sub = {}
        for key, tag, src in (
            ("make", TAG_MAKE, base),
            ("model", TAG_MODEL, base),
            ("software", TAG_SOFTWARE, base),
            ("processing_software", TAG_PROCESSING_SOFTWARE, base),
            ("datetime", TAG_DATETIME, base),
            ("artist", TAG_ARTIST, base),
            ("description", TAG_IMAGE_DESCRIPTION, base),
            ("datetime_original", TAG_DATETIME_ORIGINAL, sub),
            ("datetime_digitized", TAG_DATETIME_DIGITIZED, sub),
            ("lens_model", TAG_LENS_MODEL, sub),
        ):
            if tag in src:
                fields[key] = _clean(src[tag])
        if TAG_USER_COMMENT in sub:
            fields["user_comment"] = _decode_user_comment(sub[TAG_USER_COMMENT])
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, struct_error) as exc:
        found.exif_error = f"Pillow: {exc}"
    if not fields and found.fmt in {"JPEG", "TIFF", "MPO"}:
        fields = _read_exif_with_exifread(data, found)

    found.exif = {k: v for k, v in fields.items() if v and k != "user_comment"}
    for key in ("software", "processing_software", "make", "model", "artist"):
        if fields.get(key):
            found.check_software_field(f"EXIF {key}", fields[key])
    comment = fields.get("user_comment", "")
    if comment:
        found.exif["user_comment"] = comment[:300]
        _check_parameters_text(comment, "EXIF UserComment", found)


def _read_exif_with_exifread(data: bytes, found: _Findings) -> dict[str, Any]:
    """exifread is more forgiving with damaged IFDs than Pillow."""
    import exifread  # imported lazily: only needed when Pillow gave up

    try:
        tags = exifread.process_file(io.BytesIO(data), details=False)
    except Exception as exc:  # exifread raises a zoo of types on broken files
        found.exif_error += f" exifread: {exc}"
        return {}
    mapping = {
        "Image Make": "make",
        "Image Model": "model",
        "Image Software": "software",
        "Image DateTime": "datetime",
        "EXIF DateTimeOriginal": "datetime_original",
        "EXIF DateTimeDigitized": "datetime_digitized",
        "EXIF LensModel": "lens_model",
    }
    return {key: _clean(tags[name]) for name, key in mapping.items() if name in tags}


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, str(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _flatten(v, prefix)
    elif value is not None:
        yield prefix, str(value)


XMP_FIELD_RE = re.compile(
    r"(DigitalSourceType|CreatorTool|softwareAgent)\s*(?:=\s*[\"']([^\"']*)[\"']|>\s*([^<]*)<)", re.I
)


def _read_xmp(im: Image.Image, found: _Findings) -> None:
    pairs: list[tuple[str, str]] = []
    try:
        pairs = [(k.split("}")[-1], v) for k, v in _flatten(im.getxmp())]
    except Exception:  # malformed XMP is common in the wild; fall back to a tolerant regex below
        pairs = []
    if not pairs:
        raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        pairs = [(m.group(1), m.group(2) or m.group(3) or "") for m in XMP_FIELD_RE.finditer(text)]
    for key, value in pairs:
        key_low = key.lower()
        if key_low.endswith("digitalsourcetype"):
            code = value.rstrip("/").rsplit("/", 1)[-1].strip()
            found.xmp_fields["DigitalSourceType"] = code
            found.digital_source_type = code.lower()
            if code.lower() in AI_SOURCE_TYPES:
                found.add_generator(f"IPTC {code}", "XMP DigitalSourceType")
        elif key_low in {"creatortool", "softwareagent"} and value.strip():
            found.xmp_fields.setdefault("CreatorTool", value.strip())
            found.check_software_field(f"XMP {key}", value)
    # An IPTC code is generic; when a tool is also named, report the tool first.
    if len(found.generators) > 1 and found.generators[0][0].startswith("IPTC "):
        found.generators.append(found.generators.pop(0))


def _read_text_chunks(im: Image.Image, found: _Findings) -> None:
    """PNG tEXt/iTXt/zTXt chunks and JPEG comments, which Pillow exposes in `im.info`."""
    info = im.info
    skip = {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "photoshop", "adobe", "adobe_transform"}
    texts: dict[str, str] = {str(k): _clean(v) for k, v in info.items() if k not in skip and isinstance(v, str | bytes)}
    found.text_keys = sorted(texts)

    if "fooocus_scheme" in texts or "fooocus" in texts.get("parameters", "").lower()[:20000]:
        found.add_generator("Fooocus", "PNG text 'fooocus_scheme'/'parameters'", texts.get("parameters", ""))
    elif _is_json_with(texts.get("prompt", ""), _comfy_prompt) or _is_json_with(
        texts.get("workflow", ""), lambda d: isinstance(d, dict) and isinstance(d.get("nodes"), list)
    ):
        found.add_generator("ComfyUI", "PNG text 'prompt'/'workflow' node graph", texts.get("prompt", ""))
    invoke_keys = ("invokeai_metadata", "sd-metadata", "Dream", "invokeai_graph", "invokeai_workflow")
    invoke_key = next((k for k in invoke_keys if k in texts), None)
    if invoke_key:
        found.add_generator("InvokeAI", f"PNG text '{invoke_key}'", texts[invoke_key])
    if "sui_image_params" in texts:
        found.add_generator("SwarmUI", "PNG text 'sui_image_params'", texts["sui_image_params"])
    software = texts.get("Software", "")
    comment = texts.get("Comment", "")
    if software.lower().startswith("novelai") or (
        texts.get("Source", "").startswith("Stable Diffusion") and _is_json_with(comment, lambda d: "uc" in d)
    ):
        found.add_generator("NovelAI", "PNG text 'Software'/'Comment'", comment or texts.get("Description", ""))
    if not any(g == "Fooocus" for g, _ in found.generators):
        _check_parameters_text(texts.get("parameters", ""), "PNG text 'parameters'", found)
    _check_parameters_text(texts.get("comment", ""), "JPEG comment", found)
    for field_name in ("Software", "Source", "Creation Software"):
        if texts.get(field_name):
            found.check_software_field(f"text '{field_name}'", texts[field_name])


def _check_parameters_text(text: str, where: str, found: _Findings) -> None:
    """AUTOMATIC1111's plain-text parameters: prompt, 'Negative prompt:', then 'Steps: n, Sampler: ...'."""
    if not text or not A1111_RE.search(text[:50000]):
        return
    generator = "Fooocus" if "Version: Fooocus" in text else "AUTOMATIC1111"
    found.add_generator(generator, where, text)


def _comfy_prompt(d: Any) -> bool:
    return isinstance(d, dict) and any(isinstance(v, dict) and "class_type" in v for v in d.values())


def _is_json_with(text: str, predicate: Any) -> bool:
    if not text or text[:1] not in "{[":
        return False
    try:
        return bool(predicate(json.loads(text)))
    except (ValueError, TypeError, AttributeError):
        return False


def _read_stealth(im: Image.Image, found: _Findings) -> None:
    """The sd-webui "stealth pnginfo" extension hides the parameters in pixel LSBs of lossless images.

    Bits run column by column (x outer, y inner): a 15-byte signature, a 32-bit payload length in bits, then
    the payload (UTF-8, or gzip when the signature says 'comp'). Only lossless formats can carry it.
    """
    if found.fmt not in {"PNG", "WEBP", "TIFF"} or im.mode not in {"RGBA", "RGB"}:
        return
    try:
        arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError):
        return
    if arr.ndim != 3 or arr.shape[0] * arr.shape[1] < 200:
        return
    streams: list[tuple[str, np.ndarray]] = []
    if arr.shape[2] == 4:
        streams.append(("alpha", (arr[:, :, 3] & 1).T.reshape(-1)))
    streams.append(("rgb", (arr[:, :, :3] & 1).transpose(1, 0, 2).reshape(-1)))
    for mode, bits in streams:
        signature = np.packbits(bits[:120]).tobytes().decode("latin-1")
        if signature not in STEALTH_SIGNATURES or STEALTH_SIGNATURES[signature][0] != mode:
            continue
        compressed = STEALTH_SIGNATURES[signature][1]
        length = int("".join(map(str, bits[120:152].tolist())), 2)
        if length <= 0 or length > min(len(bits) - 152, STEALTH_MAX_BYTES * 8):
            continue
        payload = np.packbits(bits[152 : 152 + length]).tobytes()
        try:
            if compressed:
                payload = zlib.decompressobj(wbits=31).decompress(payload, STEALTH_MAX_BYTES)
            text = payload.decode("utf-8", "replace")
        except zlib.error:
            continue
        found.text_keys.append(signature)
        before = len(found.generators)
        _check_parameters_text(text, f"stealth metadata in {mode} LSBs ({signature})", found)
        if len(found.generators) == before:
            found.add_generator("AUTOMATIC1111", f"stealth metadata in {mode} LSBs ({signature})", text)
        return
