"""media.validation on its own: every allowlisted format is recognised from its bytes, filenames are
sanitised, and the polyglot scan does not trip on ordinary files."""

from __future__ import annotations

import io

import pytest
from media_factories import av_bytes, image_bytes, jpeg_bytes, wav_bytes

from hlekkr.exceptions import HlekkrError
from media.validation import sanitize_filename, validate_media


def check(data: bytes, declared: str = "") -> tuple[str, str]:
    facts = validate_media(io.BytesIO(data), size=len(data), declared_content_type=declared)
    return facts.mime_type, facts.kind


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("TIFF", "image/tiff"),
    ],
)
def test_every_allowlisted_image_format_is_recognised(fmt: str, mime: str) -> None:
    assert check(image_bytes(fmt), mime) == (mime, "image")


def test_heic_is_recognised_through_pillow_heif() -> None:
    import pillow_heif  # noqa: F401 - registered by media.validation

    assert check(image_bytes("HEIF"), "image/heic") == ("image/heic", "image")


@pytest.mark.parametrize(
    ("fmt", "codec", "audio", "mime", "kind"),
    [
        ("mp4", "libx264", False, "video/mp4", "video"),
        ("mov", "libx264", False, "video/quicktime", "video"),
        ("webm", "libvpx", False, "video/webm", "video"),
        ("mp3", "libmp3lame", True, "audio/mpeg", "audio"),
        ("ipod", "aac", True, "audio/mp4", "audio"),
        ("flac", "flac", True, "audio/flac", "audio"),
        ("ogg", "libopus", True, "audio/ogg", "audio"),
    ],
)
def test_every_allowlisted_audio_and_video_format_is_recognised(
    fmt: str, codec: str, audio: bool, mime: str, kind: str
) -> None:
    rate = 48000 if codec == "libopus" else 44100
    assert check(av_bytes(fmt, codec, audio=audio, rate=rate), mime) == (mime, kind)


def test_wav_is_recognised() -> None:
    assert check(wav_bytes(), "audio/wav") == ("audio/wav", "audio")


def test_a_truncated_video_is_corrupt() -> None:
    data = av_bytes("mp4", "libx264", audio=False)
    with pytest.raises(HlekkrError) as caught:
        check(data[: len(data) // 3], "video/mp4")
    assert caught.value.code == "corrupt_file"


def test_a_jpeg_with_an_exif_thumbnail_is_not_a_polyglot() -> None:
    from PIL import Image

    thumb = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(2, (160, 120)))).save(thumb, "JPEG")
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(3, (640, 480)))).save(out, "JPEG", exif=exif.tobytes())
    assert check(out.getvalue(), "image/jpeg") == ("image/jpeg", "image")


def test_a_progressive_jpeg_is_accepted() -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(4))).save(out, "JPEG", progressive=True)
    assert check(out.getvalue()) == ("image/jpeg", "image")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("a\x00b\r\n\x1b[31m.jpg", "ab[31m.jpg"),
        ("\u202egpj.exe", "gpj.exe"),  # right-to-left override removed
        ("..", "upload"),
        ("", "upload"),
        (".hidden.jpg", "hidden.jpg"),
    ],
)
def test_filenames_are_sanitised(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_long_filenames_are_cut_to_255_characters_keeping_the_extension() -> None:
    name = sanitize_filename("x" * 400 + ".jpeg")
    assert len(name) == 255 and name.endswith(".jpeg")
