"""The metadata detector on files the tests make: generators, editors, cameras, dates and broken input."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from skimage import data

from analysis.detectors.base import AbstainCode, Category, DetectorContext, DetectorOutput, MediaInput
from analysis.detectors.metadata import MetadataDetector

A1111_TEXT = (
    "photo of a duck\nNegative prompt: monochrome\n"
    "Steps: 15, Sampler: UniPC, CFG scale: 5, Seed: 235284042, Size: 512x400, Model hash: c0d1994c73"
)


def run(path: Path) -> DetectorOutput:
    media = MediaInput(path=path, kind="image", mime="", size=path.stat().st_size)
    detector = MetadataDetector()
    assert detector.applies(media) is None
    out = detector.run(media, DetectorContext())
    json.dumps(out.evidence)  # evidence must always be JSON-serialisable
    return out


def photo(size: int = 64) -> Image.Image:
    return Image.fromarray(data.astronaut()[:size, :size])


def save_png(tmp_path: Path, im: Image.Image, **text: str) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    path = tmp_path / "image.png"
    im.save(path, pnginfo=info)
    return path


def camera_jpeg(
    tmp_path: Path,
    *,
    make: str = "Canon",
    model: str = "Canon EOS 5D",
    software: str | None = None,
    original: str = "2021:05:01 10:00:00",
    modified: str | None = None,
    user_comment: bytes | None = None,
) -> Path:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    if software:
        exif[0x0131] = software
    if modified:
        exif[0x0132] = modified
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = original
    if user_comment is not None:
        sub[0x9286] = user_comment
    path = tmp_path / "camera.jpg"
    photo().save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def stealth_png(tmp_path: Path, text: str, *, compressed: bool) -> Path:
    payload = gzip.compress(text.encode()) if compressed else text.encode()
    signature = b"stealth_pngcomp" if compressed else b"stealth_pnginfo"
    bits = np.concatenate(
        [
            np.unpackbits(np.frombuffer(signature, np.uint8)),
            np.array([int(b) for b in f"{len(payload) * 8:032b}"], np.uint8),
            np.unpackbits(np.frombuffer(payload, np.uint8)),
        ]
    )
    rgba = np.dstack([data.astronaut()[:96, :96], np.full((96, 96), 255, np.uint8)])
    alpha_columns = rgba[:, :, 3].T.reshape(-1).copy()  # the extension writes column by column
    alpha_columns[: len(bits)] = (alpha_columns[: len(bits)] & 0xFE) | bits
    rgba[:, :, 3] = alpha_columns.reshape(96, 96).T
    path = tmp_path / "stealth.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def assert_generated(out: DetectorOutput, generator: str) -> None:
    assert out.status == "ok"
    assert out.evidence["generator"] == generator
    assert out.probability is not None and out.probability >= 0.9
    assert any(r.category == Category.GENERATED for r in out.reasons)


def test_it_names_the_automatic1111_generator(tmp_path: Path) -> None:
    out = run(save_png(tmp_path, photo(), parameters=A1111_TEXT))
    assert_generated(out, "AUTOMATIC1111")
    assert "Steps: 15" in out.evidence["generation_parameters"]


def test_it_reads_automatic1111_parameters_from_a_jpeg_user_comment(tmp_path: Path) -> None:
    comment = b"UNICODE\x00" + A1111_TEXT.encode("utf-16-le")
    out = run(camera_jpeg(tmp_path, make="", model="", user_comment=comment))
    assert_generated(out, "AUTOMATIC1111")


@pytest.mark.parametrize("compressed", [True, False])
def test_it_finds_stealth_parameters_in_the_alpha_channel(tmp_path: Path, compressed: bool) -> None:
    out = run(stealth_png(tmp_path, A1111_TEXT, compressed=compressed))
    assert_generated(out, "AUTOMATIC1111")
    assert "stealth" in " ".join(out.evidence["generator_sources"])


def test_it_names_comfyui_from_its_node_graph(tmp_path: Path) -> None:
    prompt = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}}})
    workflow = json.dumps({"last_node_id": 3, "nodes": [{"id": 3, "type": "KSampler"}]})
    assert_generated(run(save_png(tmp_path, photo(), prompt=prompt, workflow=workflow)), "ComfyUI")


def test_a_plain_prompt_text_chunk_is_not_comfyui(tmp_path: Path) -> None:
    out = run(save_png(tmp_path, photo(), prompt="a sunny day"))
    assert "generator" not in out.evidence


def test_it_names_fooocus(tmp_path: Path) -> None:
    params = json.dumps({"base_model": "juggernautXL", "adm_guidance": "(1.5, 0.8, 0.3)", "steps": 30})
    assert_generated(run(save_png(tmp_path, photo(), parameters=params, fooocus_scheme="fooocus")), "Fooocus")


@pytest.mark.parametrize("key", ["invokeai_metadata", "sd-metadata", "Dream"])
def test_it_names_invokeai(tmp_path: Path, key: str) -> None:
    value = '"a cat" -s 50 -S 42 -W 512 -H 512' if key == "Dream" else json.dumps({"model": "sd"})
    assert_generated(run(save_png(tmp_path, photo(), **{key: value})), "InvokeAI")


def test_it_names_novelai(tmp_path: Path) -> None:
    comment = json.dumps({"steps": 28, "sampler": "k_euler", "uc": "lowres", "seed": 1})
    out = run(save_png(tmp_path, photo(), Software="NovelAI", Source="Stable Diffusion 1D44365E", Comment=comment))
    assert_generated(out, "NovelAI")


def test_iptc_trained_algorithmic_media_in_xmp_is_generated(tmp_path: Path) -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Firefly" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    path = tmp_path / "firefly.png"
    photo().save(path, pnginfo=info)
    out = run(path)
    assert_generated(out, "Adobe Firefly")
    assert out.evidence["digital_source_type"] == "trainedAlgorithmicMedia"


def test_midjourney_in_the_software_field_is_generated(tmp_path: Path) -> None:
    assert_generated(run(camera_jpeg(tmp_path, make="", model="", software="Midjourney v6")), "Midjourney")


def test_consistent_camera_metadata_counts_as_authentic(tmp_path: Path) -> None:
    out = run(camera_jpeg(tmp_path, modified="2021:05:01 10:00:00"))
    assert out.probability is not None and out.probability < 0.2
    assert [r.category for r in out.reasons] == [Category.AUTHENTIC]
    assert out.evidence["make"] == "Canon"
    assert out.evidence["model"] == "Canon EOS 5D"
    assert out.evidence["capture_date"] == "2021:05:01 10:00:00"


def test_gimp_is_an_edit_not_a_manipulation(tmp_path: Path) -> None:
    out = run(camera_jpeg(tmp_path, software="GIMP 2.10.30", modified="2022:01:01 09:00:00"))
    assert out.evidence["software"] == "GIMP 2.10.30"
    assert out.evidence["editing_software"] == ["GIMP"]
    assert any(r.category == Category.EDITED for r in out.reasons)
    assert not any(r.category in {Category.MANIPULATED, Category.GENERATED} for r in out.reasons)
    assert out.probability is not None and out.probability < 0.35


def test_a_capture_date_after_the_modification_date_is_flagged(tmp_path: Path) -> None:
    out = run(camera_jpeg(tmp_path, original="2021:05:01 10:00:00", modified="2020:01:01 10:00:00"))
    assert "date_order" in out.evidence["inconsistencies"]
    assert out.probability is not None and 0.35 < out.probability < 0.6


def test_a_capture_date_in_the_future_is_flagged(tmp_path: Path) -> None:
    out = run(camera_jpeg(tmp_path, original="2999:01:01 00:00:00"))
    assert "date_in_future" in out.evidence["inconsistencies"]


def test_a_make_that_contradicts_the_model_is_flagged(tmp_path: Path) -> None:
    out = run(camera_jpeg(tmp_path, make="NIKON CORPORATION", model="Canon EOS 5D"))
    assert "make_model_mismatch" in out.evidence["inconsistencies"]


def test_it_abstains_when_there_is_no_metadata(tmp_path: Path) -> None:
    path = tmp_path / "bare.png"
    photo().save(path)
    out = run(path)
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.NO_DATA


def test_it_abstains_on_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "junk.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    out = run(path)
    assert out.status == "abstained"
    assert out.abstain_code == AbstainCode.UNREADABLE


def test_it_still_reads_the_header_of_a_truncated_jpeg(tmp_path: Path) -> None:
    path = camera_jpeg(tmp_path)
    path.write_bytes(path.read_bytes()[:1500])
    out = run(path)
    assert out.evidence["make"] == "Canon"


def test_garbage_exif_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    photo().save(path, "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff\x01\x01")
    out = run(path)
    assert out.status in {"ok", "abstained"}


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1)),
        Image.fromarray(data.camera()),
        Image.fromarray(np.dstack([data.astronaut()[:64, :64], np.full((64, 64), 128, np.uint8)]), "RGBA"),
    ],
    ids=["1x1", "greyscale", "png-with-alpha"],
)
def test_odd_images_with_a_software_chunk_give_a_sane_result(tmp_path: Path, image: Image.Image) -> None:
    out = run(save_png(tmp_path, image, Software="GIMP 2.10"))
    assert out.status == "ok"
    assert "generator" not in out.evidence
    assert out.evidence["editing_software"] == ["GIMP"]


def test_a_cmyk_jpeg_with_camera_metadata_is_read(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    buf = io.BytesIO()
    photo().convert("CMYK").save(buf, "JPEG", exif=exif.tobytes())
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(buf.getvalue())
    out = run(path)
    assert out.evidence["model"] == "Canon EOS R5"


def jpeg_with_iim(tmp_path: Path, datasets: dict[int, str]) -> Path:
    """A JPEG with an APP13 Photoshop segment holding IPTC-IIM record-2 datasets (built by hand, as cameras and
    newsroom tools write it)."""
    iim = b"".join(
        b"\x1c\x02" + bytes([number]) + len(value.encode()).to_bytes(2, "big") + value.encode()
        for number, value in datasets.items()
    )
    resource = b"8BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim + (b"\x00" if len(iim) % 2 else b"")
    payload = b"Photoshop 3.0\x00" + resource
    buffer = io.BytesIO()
    photo().save(buffer, "JPEG", quality=90)
    body = buffer.getvalue()
    app13 = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    path = tmp_path / "iim.jpg"
    path.write_bytes(body[:2] + app13 + body[2:])
    return path


def test_a_digital_source_type_in_iptc_iim_is_a_declaration(tmp_path: Path) -> None:
    path = jpeg_with_iim(tmp_path, {115: "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"})
    out = run(path)
    assert out.probability is not None and out.probability >= 0.9
    assert [r.category for r in out.reasons if r.code == "generator_signature"] == [Category.GENERATED]
    assert out.decisive == ["ai_declared_metadata"]
    assert "IPTC-IIM source" in out.evidence["generator_sources"][0]


def test_a_platform_ai_label_in_the_iim_credit_is_a_declaration(tmp_path: Path) -> None:
    out = run(jpeg_with_iim(tmp_path, {110: "Made with Google AI"}))
    assert out.decisive == ["ai_declared_metadata"]
    assert out.evidence["generator"] == "Google 'Made with Google AI'"


def test_an_ordinary_iim_caption_is_not_a_declaration(tmp_path: Path) -> None:
    out = run(jpeg_with_iim(tmp_path, {120: "Fishing boats in the harbour at dawn", 110: "Staff photographer"}))
    assert out.decisive == []
    assert out.evidence["iptc_iim"]["caption"].startswith("Fishing boats")


def test_the_tc260_aigc_label_in_xmp_is_a_declaration(tmp_path: Path) -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/">'
        '<TC260:AIGC>{"Label":"1","ContentProducer":"example"}</TC260:AIGC></rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    path = tmp_path / "aigc.png"
    photo().save(path, pnginfo=info)
    out = run(path)
    assert out.decisive == ["ai_declared_metadata"]
    assert out.evidence["generator"] == "AIGC label (TC260)"


def test_a_generator_named_in_a_jpeg_comment_is_a_declaration(tmp_path: Path) -> None:
    path = tmp_path / "comment.jpg"
    photo().save(path, "JPEG", comment=b"Image Creator from Designer")
    out = run(path)
    assert out.decisive == ["ai_declared_metadata"]
    assert out.evidence["generator"] == "Microsoft Designer"
