"""C2PA test helpers: the signing CA and manifest helpers live in analysis/c2pa_signing.py (the evaluation
benchmark uses them too); tampering is test-only and lives here."""

from analysis.c2pa_signing import (
    IPTC_SOURCE_TYPE,
    SigningCA,
    ai_created_actions,
    make_test_ca,
    manifest_definition,
    opened_actions,
    sign_bytes,
)

__all__ = [
    "IPTC_SOURCE_TYPE",
    "SigningCA",
    "ai_created_actions",
    "flip_image_bytes_after_manifest",
    "make_test_ca",
    "manifest_definition",
    "opened_actions",
    "sign_bytes",
]


def flip_image_bytes_after_manifest(signed: bytes) -> bytes:
    """Tamper with a signed JPEG: change entropy-coded bytes near the end, away from the manifest segments.

    The manifest lives in APP11 segments near the start, so bytes just before the EOI marker belong to the
    image data the hard-binding hash covers; flipping them must produce assertion.dataHash.mismatch.
    """
    tampered = bytearray(signed)
    end = len(tampered) - 2  # before FFD9 (EOI)
    for offset in range(end - 40, end - 20):
        # Never create or break a 0xFF marker or its stuffing byte, so the JPEG still parses.
        if 0x00 < tampered[offset] < 0xFE and tampered[offset - 1] != 0xFF:
            tampered[offset] ^= 0x01
    return bytes(tampered)
