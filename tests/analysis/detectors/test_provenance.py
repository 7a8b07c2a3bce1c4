"""ProvenanceDetector against files signed here with a CA generated for the run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from c2pa_signing import (
    IPTC_SOURCE_TYPE,
    SigningCA,
    ai_created_actions,
    flip_image_bytes_after_manifest,
    make_test_ca,
    manifest_definition,
    opened_actions,
    sign_bytes,
)
from PIL import Image
from skimage import data

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Decisive,
    DetectorContext,
    DetectorOutput,
    MediaInput,
)
from analysis.detectors.provenance import ProvenanceDetector, classify, summarise_manifest_store

detector = ProvenanceDetector()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def media_from(tmp_path: Path, content: bytes, mime: str = "image/jpeg", name: str = "item.jpg") -> MediaInput:
    path = tmp_path / name
    path.write_bytes(content)
    kind = "video" if mime.startswith("video/") else "audio" if mime.startswith("audio/") else "image"
    return MediaInput(path=path, kind=kind, mime=mime, size=len(content))  # type: ignore[arg-type]


def analyse(tmp_path: Path, content: bytes, anchors: str | None = None) -> tuple[MediaInput, DetectorOutput]:
    media = media_from(tmp_path, content)
    configured = ProvenanceDetector(trust_anchors_pem=anchors)
    refusal = configured.applies(media)
    assert refusal is None
    return media, configured.run(media, DetectorContext())


@pytest.fixture(scope="module")
def ca() -> SigningCA:
    return make_test_ca()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return jpeg_bytes(data.astronaut())


@pytest.fixture(scope="module")
def camera_signed(ca: SigningCA, photo: bytes) -> bytes:
    return sign_bytes(photo, ca)


@pytest.fixture(scope="module")
def ai_signed(ca: SigningCA, photo: bytes) -> bytes:
    return sign_bytes(photo, ca, manifest_definition(ai_created_actions("trainedAlgorithmicMedia")))


def test_it_abstains_with_no_data_when_the_file_has_no_manifest(tmp_path: Path, photo: bytes) -> None:
    _, output = analyse(tmp_path, photo)

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.NO_DATA
    assert output.reasons[0].text == "no C2PA manifest"
    assert output.evidence["state"] == "absent"


def test_a_signer_without_a_configured_anchor_is_reported_as_untrusted(
    tmp_path: Path, ca: SigningCA, camera_signed: bytes
) -> None:
    _, output = analyse(tmp_path, camera_signed)

    assert output.status == "ok"
    assert output.evidence["state"] == "untrusted"
    # The SDK's own word is "Valid"; the failure code is what tells us nobody vouches for the signer.
    assert output.evidence["sdk_state"] == "Valid"
    assert output.evidence["failure"] == ["signingCredential.untrusted"]
    assert output.evidence["signer"] == ca.signer_organisation
    assert output.probability is None
    assert output.decisive == []
    assert "c2pa_untrusted_signer" in [r.code for r in output.reasons]


def test_a_signer_under_a_configured_anchor_is_trusted_and_authentic(
    tmp_path: Path, ca: SigningCA, camera_signed: bytes
) -> None:
    _, output = analyse(tmp_path, camera_signed, anchors=ca.root_pem)

    assert output.evidence["state"] == "trusted"
    assert output.evidence["sdk_state"] == "Trusted"
    assert output.evidence["failure"] == []
    assert output.decisive == [Decisive.TRUSTED_AUTHENTIC]
    assert output.probability is not None and output.probability < 0.2
    assert Category.AUTHENTIC in [r.category for r in output.reasons]


def test_an_anchor_from_another_ca_does_not_make_the_signer_trusted(tmp_path: Path, camera_signed: bytes) -> None:
    stranger = make_test_ca("Somebody Else")

    _, output = analyse(tmp_path, camera_signed, anchors=stranger.root_pem)

    assert output.evidence["state"] == "untrusted"
    assert output.decisive == []


def test_ai_generation_declared_by_a_trusted_signer_is_decisive(
    tmp_path: Path, ca: SigningCA, ai_signed: bytes
) -> None:
    _, output = analyse(tmp_path, ai_signed, anchors=ca.root_pem)

    assert output.evidence["state"] == "trusted"
    assert output.evidence["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert output.decisive == [Decisive.AI_DECLARED_TRUSTED]
    assert output.probability is not None and output.probability > 0.9
    assert Category.GENERATED in [r.category for r in output.reasons]


def test_ai_generation_declared_by_an_untrusted_signer_is_flagged_as_untrusted(
    tmp_path: Path, ai_signed: bytes
) -> None:
    _, output = analyse(tmp_path, ai_signed)

    assert output.evidence["state"] == "untrusted"
    assert output.decisive == [Decisive.AI_DECLARED_UNTRUSTED]
    assert output.probability is not None and 0.5 < output.probability < 0.99


@pytest.mark.parametrize("source_type", ["algorithmicMedia", "compositeWithTrainedAlgorithmicMedia"])
def test_other_ai_source_types_also_count_as_declared_generation(
    tmp_path: Path, ca: SigningCA, photo: bytes, source_type: str
) -> None:
    signed = sign_bytes(photo, ca, manifest_definition(ai_created_actions(source_type)))

    _, output = analyse(tmp_path, signed, anchors=ca.root_pem)

    assert output.decisive == [Decisive.AI_DECLARED_TRUSTED]
    assert output.evidence["digital_source_types"] == [source_type]


def test_bytes_changed_after_signing_are_reported_as_tampered(
    tmp_path: Path, ca: SigningCA, camera_signed: bytes
) -> None:
    tampered = flip_image_bytes_after_manifest(camera_signed)

    for anchors in (None, ca.root_pem):
        _, output = analyse(tmp_path, tampered, anchors=anchors)

        assert output.evidence["state"] == "tampered"
        assert output.evidence["sdk_state"] == "Invalid"
        assert "assertion.dataHash.mismatch" in output.evidence["failure"]
        assert output.decisive == [Decisive.PROVENANCE_TAMPERED]
        assert output.probability is not None and output.probability > 0.9
        assert output.reasons[0].category == Category.MANIPULATED


def test_a_tampered_ai_manifest_is_not_also_taken_as_a_trusted_ai_declaration(
    tmp_path: Path, ca: SigningCA, ai_signed: bytes
) -> None:
    _, output = analyse(tmp_path, flip_image_bytes_after_manifest(ai_signed), anchors=ca.root_pem)

    assert output.decisive == [Decisive.PROVENANCE_TAMPERED]


def test_the_declared_actions_are_listed_and_edits_are_called_edits(
    tmp_path: Path, ca: SigningCA, photo: bytes
) -> None:
    actions = [
        {"action": "c2pa.created", "digitalSourceType": IPTC_SOURCE_TYPE + "digitalCapture"},
        {"action": "c2pa.cropped", "softwareAgent": "GIMP 2.10"},
        {"action": "c2pa.color_adjustments"},
    ]
    signed = sign_bytes(photo, ca, manifest_definition(actions))

    _, output = analyse(tmp_path, signed, anchors=ca.root_pem)

    listed = [a["action"] for a in output.evidence["actions"]]
    assert listed == ["c2pa.created", "c2pa.cropped", "c2pa.color_adjustments"]
    assert output.evidence["actions"][1]["software_agent"] == "GIMP 2.10"
    assert output.evidence["digital_source_types"] == ["digitalCapture"]
    edits = [r for r in output.reasons if r.code == "c2pa_edits_declared"]
    assert edits and edits[0].category == Category.EDITED
    # Declared edits by a trusted signer are not evidence of deception: still trusted-authentic.
    assert output.decisive == [Decisive.TRUSTED_AUTHENTIC]


def test_evidence_names_the_active_manifest_and_is_json_friendly(tmp_path: Path, camera_signed: bytes) -> None:
    import json

    _, output = analyse(tmp_path, camera_signed)

    assert output.evidence["active_manifest"].startswith("urn:")
    assert output.evidence["ingredient_failures"] == []
    assert output.evidence["informational"] == ["signingCredential.ocsp.skipped"]
    json.dumps(output.evidence)


def test_malformed_manifest_bytes_give_a_typed_abstention(tmp_path: Path, camera_signed: bytes) -> None:
    start = camera_signed.find(b"c2pa")
    broken = bytearray(camera_signed)
    for offset in range(start + 10, start + 18):
        broken[offset] ^= 0x5A

    _, output = analyse(tmp_path, bytes(broken))

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.UNREADABLE
    assert output.evidence["state"] == "malformed"


def test_a_truncated_signed_file_gives_a_typed_abstention(tmp_path: Path, camera_signed: bytes) -> None:
    start = camera_signed.find(b"c2pa")

    _, output = analyse(tmp_path, camera_signed[: start + 500])

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.UNREADABLE


def test_random_bytes_labelled_as_jpeg_give_a_typed_abstention(tmp_path: Path) -> None:
    noise = np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8).tobytes()

    _, output = analyse(tmp_path, noise)

    assert output.status == "abstained"
    assert output.abstain_code in {
        AbstainCode.UNREADABLE,
        AbstainCode.UNSUPPORTED_FORMAT,
        AbstainCode.NO_DATA,
    }


def test_a_one_pixel_image_simply_has_no_manifest(tmp_path: Path) -> None:
    _, output = analyse(tmp_path, jpeg_bytes(np.zeros((1, 1, 3), dtype=np.uint8)))

    assert output.abstain_code == AbstainCode.NO_DATA


def test_an_empty_file_is_refused_before_reading(tmp_path: Path) -> None:
    refusal = detector.applies(media_from(tmp_path, b""))

    assert refusal is not None and refusal.abstain_code == AbstainCode.UNREADABLE


def test_a_format_c2pa_cannot_carry_is_refused(tmp_path: Path) -> None:
    refusal = detector.applies(media_from(tmp_path, b"BM....", mime="image/bmp", name="item.bmp"))

    assert refusal is not None and refusal.abstain_code == AbstainCode.UNSUPPORTED_FORMAT


def test_video_and_audio_formats_c2pa_supports_are_accepted(tmp_path: Path) -> None:
    assert detector.applies(media_from(tmp_path, b"x", mime="video/mp4", name="a.mp4")) is None
    assert detector.applies(media_from(tmp_path, b"x", mime="audio/mpeg", name="a.mp3")) is None


def test_unparseable_trust_anchors_are_a_configuration_abstention(tmp_path: Path, camera_signed: bytes) -> None:
    _, output = analyse(tmp_path, camera_signed, anchors="not a certificate")

    assert output.status == "abstained"
    assert output.abstain_code == AbstainCode.NOT_CONFIGURED


def test_anchors_may_come_as_a_c2pa_settings_document(tmp_path: Path, ca: SigningCA, camera_signed: bytes) -> None:
    import json

    document = json.dumps({"version": 1, "trust": {"trust_anchors": ca.root_pem}})

    _, output = analyse(tmp_path, camera_signed, anchors=document)

    assert output.evidence["state"] == "trusted"


def test_a_settings_document_without_anchors_is_a_configuration_abstention(
    tmp_path: Path, camera_signed: bytes
) -> None:
    _, output = analyse(tmp_path, camera_signed, anchors='{"verify": {"remote_manifest_fetch": true}}')

    assert output.abstain_code == AbstainCode.NOT_CONFIGURED


def test_classification_keeps_credential_problems_apart_from_tampering() -> None:
    base = {"sdk_state": "Invalid", "actions": [], "digital_source_types": []}

    assert classify({**base, "failure": ["signingCredential.expired", "signingCredential.untrusted"]}) == "expired"
    assert classify({**base, "failure": ["signingCredential.untrusted", "algorithm.unsupported"]}) == "invalid"
    assert classify({**base, "failure": ["claim.malformed"]}) == "malformed"
    assert classify({**base, "failure": ["assertion.bmffHash.mismatch"]}) == "tampered"
    assert classify({**base, "sdk_state": "Valid", "failure": []}) == "valid"


def test_a_store_without_an_active_manifest_is_summarised_without_crashing() -> None:
    summary = summarise_manifest_store({"manifests": {}, "validation_state": "Invalid"})

    assert summary["actions"] == [] and summary["signer"] is None
    assert classify(summary) == "invalid"


def test_a_declaration_held_only_in_a_parent_ingredient_is_found_and_named(
    tmp_path: Path, photo: bytes, ai_signed: bytes
) -> None:
    # ChatGPT's shape: the published file's manifest records only c2pa.opened of its generated parent.
    app = make_test_ca("Hlekkr Test Chat App")
    published = sign_bytes(photo, app, manifest_definition(opened_actions()), parent=ai_signed)

    _, output = analyse(tmp_path, published)

    assert output.evidence["digital_source_types"] == []  # the active manifest itself declares nothing
    assert len(output.evidence["graph"]["manifests"]) == 2
    declaration = output.evidence["declarations"][0]
    assert declaration["digital_source_type"] == "trainedAlgorithmicMedia"
    assert declaration["manifest"].startswith("ingredient 'parent' (parentOf)")
    assert declaration["signer"] == "Hlekkr Test Newsroom"
    assert output.decisive == [Decisive.AI_DECLARED_UNTRUSTED]
    ai = next(r for r in output.reasons if r.code == "c2pa_ai_declared")
    assert ai.category == Category.GENERATED and "ingredient 'parent'" in ai.text


def test_a_generator_software_agent_without_a_source_type_is_a_declaration(
    tmp_path: Path, ca: SigningCA, photo: bytes
) -> None:
    actions = [{"action": "c2pa.created", "softwareAgent": {"name": "GPT-4o"}}]
    _, output = analyse(tmp_path, sign_bytes(photo, ca, manifest_definition(actions)))

    # c2pa-rs calls a c2pa.created without a source type malformed; the signature and hashes still hold.
    assert output.evidence["state"] == "malformed"
    assert output.evidence["integrity"]["holds"] is True
    assert output.evidence["declarations"][0]["generator"] == "OpenAI GPT-4o"
    assert output.decisive == [Decisive.AI_DECLARED_UNTRUSTED]


def test_a_trusted_capture_whose_parent_declares_ai_is_not_trusted_authentic(
    tmp_path: Path, ca: SigningCA, photo: bytes, ai_signed: bytes
) -> None:
    published = sign_bytes(photo, ca, manifest_definition(opened_actions()), parent=ai_signed)

    _, output = analyse(tmp_path, published, anchors=ca.root_pem)

    assert output.evidence["state"] == "trusted"
    assert Decisive.TRUSTED_AUTHENTIC not in output.decisive
    assert output.decisive == [Decisive.AI_DECLARED_TRUSTED]


def test_a_parent_declaration_by_a_trusted_generator_is_trusted_under_an_untrusted_app(
    tmp_path: Path, ca: SigningCA, photo: bytes, ai_signed: bytes
) -> None:
    # The generator (ca) is on the trust list, the app that re-saved the file is not. c2pa-rs re-judges the
    # ingredient against today's anchors (ingredientDeltas), so the declaration is the trusted generator's.
    app = make_test_ca("Hlekkr Test Untrusted App")
    published = sign_bytes(photo, app, manifest_definition(opened_actions()), parent=ai_signed)

    _, output = analyse(tmp_path, published, anchors=ca.root_pem)

    assert output.evidence["state"] == "untrusted"
    assert output.evidence["declarations"][0]["signer_trust"] == "trusted"
    assert output.decisive == [Decisive.AI_DECLARED_TRUSTED]


def test_an_expired_untrusted_credential_with_intact_integrity_still_declares_ai(
    tmp_path: Path, ca: SigningCA, photo: bytes
) -> None:
    """The ChatGPT case: Invalid only because the credential is untrusted and expired (no trusted timestamp).

    c2pa refuses to sign with an expired certificate and, without a timestamp, judges validity at the claim's
    own signing time, so the report is taken from a real signed file and given the expiry c2pa-rs adds for
    such files (signingCredential.expired, state Invalid)."""
    import json

    import c2pa

    from analysis.detectors.provenance import offline_settings

    signed = sign_bytes(photo, make_test_ca("Hlekkr Test Generator"), manifest_definition(ai_created_actions()))
    with (
        c2pa.Context.from_dict(offline_settings(None)) as context,
        c2pa.Reader("image/jpeg", io.BytesIO(signed), None, context) as reader,
    ):
        store = json.loads(reader.json())
    expired = {"code": "signingCredential.expired", "url": "self#jumbf=/c2pa", "explanation": "expired"}
    store["validation_state"] = "Invalid"
    store["validation_results"]["activeManifest"]["failure"].append(expired)

    summary = summarise_manifest_store(store)
    state = classify(summary)
    output = ProvenanceDetector._judge(state, summary, {"state": state, **summary})

    assert state == "expired"
    assert summary["integrity"]["holds"] and summary["trust"]["state"] == "expired"
    assert output.decisive == [Decisive.AI_DECLARED_UNTRUSTED]
    assert [r.code for r in output.reasons][:2] == ["c2pa_credential_expired", "c2pa_ai_declared"]


def test_a_declaration_is_not_counted_when_integrity_fails(tmp_path: Path, ai_signed: bytes) -> None:
    _, output = analyse(tmp_path, flip_image_bytes_after_manifest(ai_signed))

    assert output.evidence["integrity"]["holds"] is False
    assert output.decisive == [Decisive.PROVENANCE_TAMPERED]


def test_the_shipped_trust_lists_load_and_a_test_root_added_to_them_is_trusted(
    tmp_path: Path, ca: SigningCA, camera_signed: bytes
) -> None:
    from analysis import trust_lists

    shipped = trust_lists.trust_anchors_text(None, use_shipped=True)
    _, alone = analyse(tmp_path, camera_signed, anchors=shipped)
    _, extended = analyse(
        tmp_path, camera_signed, anchors=trust_lists.trust_anchors_text(ca.root_pem, use_shipped=True)
    )

    assert alone.evidence["state"] == "untrusted"  # loaded (no configuration abstention), and not on the list
    assert extended.evidence["state"] == "trusted"
    assert extended.decisive == [Decisive.TRUSTED_AUTHENTIC]


def wav_bytes() -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(8000, dtype=np.float32), 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def mp4_bytes() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize(("mime", "make"), [("audio/wav", wav_bytes), ("video/mp4", mp4_bytes)])
def test_ai_declarations_are_read_from_audio_and_video_alike(
    tmp_path: Path, ca: SigningCA, mime: str, make: Any
) -> None:
    signed = sign_bytes(make(), ca, manifest_definition(ai_created_actions(), fmt=mime), mime=mime)
    media = media_from(tmp_path, signed, mime=mime, name="item.wav" if mime == "audio/wav" else "item.mp4")

    output = detector.run(media, DetectorContext())

    assert output.evidence["state"] == "untrusted"
    assert output.decisive == [Decisive.AI_DECLARED_UNTRUSTED]
