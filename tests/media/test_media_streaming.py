"""One pass over an upload's bytes: the streaming inspector judges every file exactly as validate_media does on
the whole file, the direct upload never reads its bytes a second time, and on S3 the bytes go to storage while
they arrive, with nothing stored for a refusal, a duplicate or a failure."""

from __future__ import annotations

import hashlib
import io
import random
import re
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.test import Client
from media_factories import jpeg_bytes, png_bomb, stored_files, wav_bytes, zip_bytes

from hlekkr.audit.models import AuditEvent
from hlekkr.exceptions import HlekkrError
from media import multipart, storage, validation
from media.api.uploads import file_length_from_prefix
from media.models import MediaItem, StorageIntent
from media.validation import StreamInspector, validate_media

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
ARITHMETIC_JPEGS = ("astronaut-arithmetic.jpg", "astronaut-arithmetic-progressive.jpg")  # see fixtures/README.md


def batch_verdict(data: bytes, declared: str) -> tuple[Any, ...]:
    try:
        facts = validate_media(io.BytesIO(data), size=len(data), declared_content_type=declared)
    except HlekkrError as error:
        return (error.code, error.details.get("reason"))
    return ("ok", facts)


def streamed_verdict(data: bytes, declared: str, chunk: int) -> tuple[Any, ...]:
    inspector = StreamInspector(declared_content_type=declared)
    for start in range(0, len(data), chunk):
        inspector.feed(data[start : start + chunk])
    try:
        inspected = inspector.finish()
    except HlekkrError as error:
        return (error.code, error.details.get("reason"))
    assert inspected.sha256 == hashlib.sha256(data).hexdigest() and inspected.size == len(data)
    return ("ok", inspected.facts)


def mutated_jpegs() -> list[tuple[str, bytes]]:
    """Bit flips and cuts anywhere (headers, tables, scans), and flips inside marker segments (frame, tables,
    scan headers, the tables between progressive scans), in a baseline, a progressive and a restart-interval
    JPEG and two arithmetic-coded ones (baseline; progressive with restarts). The stream judges JPEGs by
    decoding their skeleton (validation.decode_skeleton), the whole-file check by decoding every byte: these
    cases hold the two to the same verdicts."""
    import cv2
    from PIL import Image
    from skimage import data

    bases = []
    for progressive in (False, True):
        out = io.BytesIO()
        Image.fromarray(data.astronaut()[::2, ::2]).save(out, "JPEG", quality=90, progressive=progressive)
        bases.append(out.getvalue())
    coffee = cv2.cvtColor(data.coffee()[::2, ::2], cv2.COLOR_RGB2BGR)
    bases.append(
        cv2.imencode(".jpg", coffee, [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_RST_INTERVAL, 2])[1].tobytes()
    )
    bases += [(FIXTURES / name).read_bytes() for name in ARITHMETIC_JPEGS]
    rng = random.Random(15)
    cases = []
    for index, base in enumerate(bases):
        cases += [(f"base{index}", base), (f"padded{index}", base + b"\x00" * 40_000)]
        cases += [(f"trailer{index}", base + b"abc" * 8000), (f"markup{index}", base + b"<HTML>")]
        segments = [found.start() for found in re.finditer(rb"\xff[\xc0-\xcf\xda\xdb\xdd]", base)]
        for trial in range(40):
            flipped = bytearray(base)
            for _ in range(rng.choice((1, 3))):
                flipped[rng.randrange(2, len(base))] ^= 1 << rng.randrange(8)
            cases.append((f"flip{index}.{trial}", bytes(flipped)))
            cases.append((f"cut{index}.{trial}", base[: rng.randrange(1, len(base))]))
            segment = rng.choice(segments)
            length = max(2, int.from_bytes(base[segment + 2 : segment + 4], "big"))
            marked = bytearray(base)
            marked[rng.randrange(segment + 2, min(len(base) - 2, segment + 2 + length))] ^= 1 << rng.randrange(8)
            cases.append((f"segment{index}.{trial}", bytes(marked)))
    return cases


def test_the_stream_inspector_judges_the_hostile_corpus_like_the_whole_file_check() -> None:
    from tests.hostile.corpus import CORPUS

    for entry in CORPUS:
        expected = batch_verdict(entry.data, entry.content_type)
        for chunk in (7, 4096, 1 << 20):
            assert streamed_verdict(entry.data, entry.content_type, chunk) == expected, (entry.name, chunk)


def test_the_stream_inspector_judges_flipped_and_cut_jpegs_like_the_whole_file_check() -> None:
    outcomes = set()
    for name, data in mutated_jpegs():
        expected = batch_verdict(data, "image/jpeg")
        outcomes.add(expected[0])
        for chunk in (1000, 65_536):
            assert streamed_verdict(data, "image/jpeg", chunk) == expected, (name, chunk)
    assert {"ok", "corrupt_file", "polyglot_file"} <= outcomes  # the mutations reach every kind of verdict


def test_a_pixel_bomb_is_refused_from_its_header_while_streaming(settings: Any) -> None:
    settings.HLEKKR_MAX_IMAGE_PIXELS = 1000
    inspector = StreamInspector(declared_content_type="image/jpeg")
    data = jpeg_bytes(size=(320, 240))
    inspector.feed(data[: len(data) // 2])
    assert inspector.refusal is not None and inspector.refusal.code == "too_many_pixels"  # before the end
    inspector.feed(data[len(data) // 2 :])
    with pytest.raises(HlekkrError) as caught:
        inspector.finish()
    assert caught.value.code == "too_many_pixels"


def test_a_jpeg_direct_upload_is_judged_in_the_stream_without_reading_the_file_again(
    client_a: Any, upload: Any
) -> None:
    data = jpeg_bytes(5)
    with mock.patch.object(validation, "validate_media", side_effect=AssertionError("second pass")):
        response = upload(client_a, "photo.jpg", data)
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get()
    assert item.sha256 == hashlib.sha256(data).hexdigest() and (item.width, item.height) == (320, 240)


def test_file_length_is_known_from_the_body_start_only_when_the_file_is_the_last_part() -> None:
    head = b'--XyZ\r\nContent-Disposition: form-data; name="priority"\r\n\r\nurgent\r\n'
    part = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    body = head + part + b"0123456789" + b"\r\n--XyZ--\r\n"
    assert file_length_from_prefix(body[:200], boundary=b"XyZ", content_length=len(body)) == 10
    # the parts before the file must be in the peeked prefix
    assert file_length_from_prefix(body[:30], boundary=b"XyZ", content_length=len(body)) is None
    # a field named file without a filename is not the upload
    plain = b'--XyZ\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--XyZ--\r\n'
    assert file_length_from_prefix(plain, boundary=b"XyZ", content_length=len(plain)) is None


# --- on S3: stored while streaming ------------------------------------------------------------------------------
pytest_s3 = pytest.mark.s3


def _open_s3_uploads() -> list[Any]:
    return list(multipart.s3_client().list_multipart_uploads(Bucket=multipart.s3_bucket()).get("Uploads", []))


@pytest_s3
def test_on_s3_the_upload_is_stored_by_the_put_that_streamed_with_the_body(
    s3_storage: Any, client_a: Any, upload: Any
) -> None:
    data = jpeg_bytes(7, size=(1200, 900))
    with mock.patch.object(storage, "write_object", side_effect=AssertionError("second write")):
        response = upload(client_a, "photo.jpg", data)
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get()
    assert str(item.id) in item.storage_key
    got = multipart.s3_client().get_object(Bucket=multipart.s3_bucket(), Key=item.storage_key)
    assert got["Body"].read() == data and got["ContentType"] == "image/jpeg"
    assert StorageIntent.objects.count() == 0


@pytest_s3
def test_on_s3_the_rows_are_written_while_s3_stores_and_commit_after_its_answer(
    s3_storage: Any, client_a: Any, upload: Any
) -> None:
    from django.db import connection

    data = jpeg_bytes(18, size=(800, 600))
    seen: list[tuple[str, bool, bool]] = []
    real_send_rest, real_commit = storage.StreamingPut.send_rest, storage.StreamingPut.commit

    def send_rest(self: Any) -> None:
        seen.append(("send_rest", MediaItem.objects.exists(), connection.in_atomic_block))
        real_send_rest(self)

    def commit(self: Any) -> None:
        seen.append(("commit", AuditEvent.objects.filter(action="media.uploaded").exists(), connection.in_atomic_block))
        real_commit(self)

    with (
        mock.patch.object(storage.StreamingPut, "send_rest", send_rest),
        mock.patch.object(storage.StreamingPut, "commit", commit),
    ):
        response = upload(client_a, "photo.jpg", data)
    assert response.status_code == 201, response.content
    # the item row exists (uncommitted) before the last bytes go out; the audit row before S3's answer is awaited
    assert [name for name, _, _ in seen[:2]] == ["send_rest", "commit"]
    assert all(exists and atomic for _, exists, atomic in seen[:2])


@pytest_s3
def test_on_s3_a_failure_after_the_body_went_out_leaves_no_row_and_no_object(
    s3_storage: Any, client_a: Any, api_as: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from media import services

    client = api_as(client_a)
    client.raise_request_exception = False
    file = SimpleUploadedFile("photo.jpg", jpeg_bytes(19, size=(800, 600)), content_type="image/jpeg")
    sent = []
    real_send_rest = storage.StreamingPut.send_rest

    def send_rest(self: Any) -> None:
        real_send_rest(self)
        sent.append(self.body_complete)

    with (
        mock.patch.object(services, "publish", side_effect=RuntimeError("event bus down")),
        mock.patch.object(storage.StreamingPut, "send_rest", send_rest),
    ):
        response = client.post("/api/v1/media/", {"file": file}, format="multipart")
    assert response.status_code == 500
    assert sent[:1] == [True]  # the whole body had gone out: S3 stored the object, then it was deleted
    assert stored_files() == [] and not MediaItem.objects.exists() and StorageIntent.objects.count() == 0
    assert not AuditEvent.objects.filter(action="media.uploaded").exists()


@pytest_s3
@pytest.mark.parametrize(
    ("data", "declared", "status", "code"),
    [
        (jpeg_bytes(8)[:-3000], "image/jpeg", 400, "corrupt_file"),  # truncated inside its scan
        (jpeg_bytes(8) + b"PK\x03\x04" + b"\x00" * 40, "image/jpeg", 415, "polyglot_file"),
        (jpeg_bytes(8) + b"<script>alert(1)</script>", "image/jpeg", 415, "polyglot_file"),
        (zip_bytes(), "image/jpeg", 415, "unsupported_media_type"),
        (wav_bytes(), "image/jpeg", 415, "content_type_mismatch"),
        (png_bomb(), "image/png", 400, "too_many_pixels"),
    ],
)
def test_on_s3_a_refused_upload_streamed_nothing_into_the_bucket(
    s3_storage: Any, client_a: Any, upload: Any, data: bytes, declared: str, status: int, code: str
) -> None:
    response = upload(client_a, "x.jpg", data, declared)
    assert response.status_code == status and response.json()["code"] == code, response.content
    assert stored_files() == [] and not MediaItem.objects.exists() and StorageIntent.objects.count() == 0
    assert AuditEvent.objects.filter(action="media.upload_rejected", payload__code=code).count() == 1


@pytest_s3
def test_on_s3_a_duplicate_is_answered_without_a_second_object(s3_storage: Any, client_a: Any, upload: Any) -> None:
    data = jpeg_bytes(9)
    first = upload(client_a, "a.jpg", data)
    again = upload(client_a, "b.jpg", data)
    assert first.status_code == 201 and again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    assert stored_files() == [MediaItem.objects.get().storage_key]


@pytest_s3
def test_on_s3_fields_after_the_file_fall_back_to_one_write_after_the_stream(
    s3_storage: Any, client_a: Any, upload: Any
) -> None:
    data = jpeg_bytes(10)
    response = upload(client_a, "a.jpg", data, priority="urgent")  # the test client sends the file first
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get()
    assert item.priority == "urgent"
    assert multipart.s3_client().get_object(Bucket=multipart.s3_bucket(), Key=item.storage_key)["Body"].read() == data


@pytest_s3
def test_on_s3_a_stream_that_breaks_mid_body_is_written_once_after_it(
    s3_storage: Any, client_a: Any, upload: Any
) -> None:
    data = jpeg_bytes(11, size=(1600, 1200))
    calls = {"n": 0}
    real_write = storage.StreamingPut.write

    def flaky(self: Any, chunk: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionResetError("storage dropped the connection")
        real_write(self, chunk)

    with mock.patch.object(storage.StreamingPut, "write", flaky):
        response = upload(client_a, "a.jpg", data)
    assert response.status_code == 201, response.content
    item = MediaItem.objects.get()
    assert multipart.s3_client().get_object(Bucket=multipart.s3_bucket(), Key=item.storage_key)["Body"].read() == data


@pytest_s3
def test_on_s3_storage_failing_mid_stream_and_after_it_is_a_503_that_leaves_nothing(
    s3_storage: Any, client_a: Any, upload: Any
) -> None:
    data = jpeg_bytes(12, size=(1600, 1200))
    with (
        mock.patch.object(storage.StreamingPut, "send_rest", side_effect=ConnectionResetError("gone")),
        mock.patch.object(storage.StreamingPut, "commit", side_effect=ConnectionResetError("gone")),
        mock.patch.object(storage, "write_object", side_effect=OSError("storage down")),
    ):
        response = upload(client_a, "a.jpg", data)
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
    assert stored_files() == [] and not MediaItem.objects.exists() and StorageIntent.objects.count() == 0
    assert _open_s3_uploads() == []


def jpeg_refused_only_by_its_decode() -> bytes:
    """A progressive JPEG whose second scan header asks for an impossible progression (Ss > Se): its markers,
    end and trailer are sound, so every check but the decode passes."""
    from PIL import Image

    out = io.BytesIO()
    pixels = (np.random.default_rng(14).random((600, 800, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(out, "JPEG", quality=90, progressive=True)
    data = bytearray(out.getvalue())
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    components = data[second_scan + 4]
    spectral = second_scan + 5 + 2 * components
    data[spectral], data[spectral + 1] = 63, 1
    return bytes(data)


def test_a_jpeg_refused_only_by_its_decode_is_refused_by_the_stream_from_its_skeleton() -> None:
    data = jpeg_refused_only_by_its_decode()
    assert batch_verdict(data, "image/jpeg")[0] == "corrupt_file"
    assert streamed_verdict(data, "image/jpeg", 65_536) == ("corrupt_file", "OSError")


def test_the_skeleton_is_every_marker_segment_and_none_of_the_scan_data() -> None:
    data = jpeg_bytes(16, size=(1600, 1200))
    walk = validation._JpegWalk()
    for start in range(0, len(data), 4096):
        walk.feed(data[start : start + 4096], start)
    skeleton = bytes(walk.skeleton)
    assert walk.first_scan is not None
    scan_header_end = walk.first_scan + 2 + int.from_bytes(data[walk.first_scan + 2 : walk.first_scan + 4], "big")
    assert skeleton == data[:scan_header_end] + b"\xff\xd9"  # one scan: the header, its scan header, EOI
    assert len(skeleton) < len(data) / 50
    assert validation.decode_skeleton(skeleton, 1600, 1200) is None


def test_a_jpeg_with_more_marker_segments_than_the_cap_is_refused() -> None:
    base = jpeg_bytes(17)
    eoi = base.rindex(b"\xff\xd9")
    comments = b"".join(b"\xff\xfe" + (2 + 1000).to_bytes(2, "big") + b"c" * 1000 for _ in range(10))
    data = base[:eoi] + comments + base[eoi:]  # comments after the scan: skipped by decoders, kept in the skeleton
    assert streamed_verdict(data, "image/jpeg", 4096)[0] == "ok"
    with mock.patch.object(validation, "SKELETON_CAP", 5000):
        assert streamed_verdict(data, "image/jpeg", 4096) == ("corrupt_file", "marker_segments")
        assert batch_verdict(data, "image/jpeg") == ("corrupt_file", "marker_segments")


def test_a_jpeg_with_more_scans_than_any_image_needs_is_refused() -> None:
    """Every scan makes the decoder visit every block again: repeating a progressive JPEG's first scan costs a
    few KiB per repeat and decodes (libjpeg only warns), so the count itself is the limit."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray((np.random.default_rng(20).random((64, 96, 3)) * 255).astype("uint8")).save(
        out, "JPEG", quality=80, progressive=True
    )
    base = out.getvalue()
    first = base.index(b"\xff\xda")
    second = base.index(b"\xff\xda", first + 2)
    scans = base.count(b"\xff\xda")  # no FF DA inside entropy-coded data: FF is always stuffed there
    for total, expected in ((validation.MAX_JPEG_SCANS, "ok"), (validation.MAX_JPEG_SCANS + 1, "corrupt_file")):
        data = base[:second] + base[first:second] * (total - scans) + base[second:]
        assert streamed_verdict(data, "image/jpeg", 65_536)[0] == expected
        assert batch_verdict(data, "image/jpeg")[0] == expected
    assert streamed_verdict(data, "image/jpeg", 4096) == ("corrupt_file", "too_many_scans")


@pytest_s3
def test_on_s3_a_decode_refusal_creates_no_object(s3_storage: Any, client_a: Any, upload: Any) -> None:
    """Every check, the decode too, is judged before the streamed PUT's held last bytes go out."""
    data = jpeg_refused_only_by_its_decode()
    response = upload(client_a, "p.jpg", data)
    assert response.status_code == 400 and response.json()["code"] == "corrupt_file", response.content
    assert stored_files() == [] and not MediaItem.objects.exists() and StorageIntent.objects.count() == 0
    assert _open_s3_uploads() == []
    assert AuditEvent.objects.filter(action="media.upload_rejected", payload__code="corrupt_file").count() == 1


@pytest_s3
def test_on_s3_a_raw_client_sending_the_file_last_streams_it(s3_storage: Any, client_a: Any) -> None:
    """The shape curl and requests send: fields first, the file last, then the closing boundary."""
    from rest_framework_simplejwt.tokens import RefreshToken

    data = jpeg_bytes(13)
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="priority"\r\n\r\nurgent\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    token = str(RefreshToken.for_user(client_a).access_token)
    with mock.patch.object(storage, "write_object", side_effect=AssertionError("second write")):
        response = Client().generic(
            "POST",
            "/api/v1/media/",
            body,
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 201, response.content
    assert MediaItem.objects.get().priority == "urgent"
