"""Signing helpers for C2PA media: a throwaway CA generated per run, and a way to sign media with it.

Used by the evaluation benchmark (analysis/evaluation.py) and the provenance tests. The certificates follow the
C2PA 2.x certificate profile closely enough for c2pa-rs to accept them: ECDSA P-256 (ES256), a v3 end-entity
certificate with critical digitalSignature key usage, an allowed extended key usage and key identifiers, issued
by a root CA. Nothing here touches the network: no timestamp authority is used.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# c2pa-kp-claimSigning, from the C2PA 2.x certificate profile.
C2PA_CLAIM_SIGNING_EKU = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
IPTC_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class SigningCA:
    root_pem: str  # the trust anchor a test may or may not configure
    signer_cert_pem: str  # end-entity certificate followed by the root, as c2pa expects a chain
    signer_key_pem: str
    signer_organisation: str


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IS"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_test_ca(
    organisation: str = "Hlekkr Test Newsroom", *, leaf_lifetime: dt.timedelta = dt.timedelta(days=90)
) -> SigningCA:
    """A fresh root CA and an ES256 end-entity signing certificate issued by it.

    A short `leaf_lifetime` (seconds) makes a credential that expires soon after signing, as short-lived
    generator credentials have by the time anyone reads the file without a trusted timestamp. (c2pa refuses to
    sign with a certificate that has already expired, so the test signs first and reads after expiry.)
    """
    now = dt.datetime.now(dt.UTC)
    leaf_from, leaf_until = now - dt.timedelta(days=1), now + leaf_lifetime
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Hlekkr Test Root CA", organisation)
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Hlekkr Test Signer", organisation))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf_from)
        .not_valid_after(leaf_until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING_EKU]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key_pem = signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningCA(
        root_pem=pem(root_cert),
        signer_cert_pem=pem(signer_cert) + pem(root_cert),
        signer_key_pem=key_pem,
        signer_organisation=organisation,
    )


def manifest_definition(
    actions: list[dict[str, Any]] | None = None, title: str = "test.jpg", fmt: str = "image/jpeg"
) -> dict[str, Any]:
    """A minimal manifest; by default one camera-style `c2pa.created` action."""
    if actions is None:
        actions = [{"action": "c2pa.created", "digitalSourceType": IPTC_SOURCE_TYPE + "digitalCapture"}]
    return {
        "claim_generator_info": [{"name": "hlekkr-tests", "version": "1.0"}],
        "title": title,
        "format": fmt,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }


def ai_created_actions(source_type: str = "trainedAlgorithmicMedia") -> list[dict[str, Any]]:
    return [{"action": "c2pa.created", "digitalSourceType": IPTC_SOURCE_TYPE + source_type}]


def opened_actions(ingredient_id: str = "parent") -> list[dict[str, Any]]:
    """`c2pa.opened` of the ingredient added with `instance_id=ingredient_id`: an app re-saving a file, the way
    ChatGPT's published images record their generated parent."""
    return [{"action": "c2pa.opened", "parameters": {"ingredientIds": [ingredient_id]}}]


def sign_bytes(
    data: bytes,
    ca: SigningCA,
    manifest: dict[str, Any] | None = None,
    mime: str = "image/jpeg",
    *,
    parent: bytes | None = None,
    parent_id: str = "parent",
) -> bytes:
    """Embed a manifest signed by `ca` into `data` and return the signed file's bytes.

    `parent`: a signed file of the same type recorded as the `parentOf` ingredient (its manifest is carried along,
    so the new manifest's ingredient graph holds it); pair it with `opened_actions(parent_id)`.
    """
    # Offline context: signing must never reach out (no TSA, no OCSP, no remote manifests), and the
    # post-sign self-check would judge our untrusted test CA, which is not what signing is about.
    context = c2pa.Context.from_dict(
        {
            "verify": {
                "remote_manifest_fetch": False,
                "ocsp_fetch": False,
                "verify_after_sign": False,
            },
            "builder": {"thumbnail": {"enabled": False}},
        }
    )
    info = c2pa.C2paSignerInfo(
        alg=c2pa.C2paSigningAlg.ES256,
        sign_cert=ca.signer_cert_pem.encode(),
        private_key=ca.signer_key_pem.encode(),
        ta_url=None,
    )
    signer = c2pa.Signer.from_info(info)
    try:
        with c2pa.Builder(json.dumps(manifest or manifest_definition(fmt=mime)), context) as builder:
            if parent is not None:
                ingredient = {"title": "parent", "relationship": "parentOf", "instance_id": parent_id}
                builder.add_ingredient(ingredient, mime, io.BytesIO(parent))
            source = io.BytesIO(data)
            dest = io.BytesIO()
            builder.sign(signer, mime, source, dest)
            return dest.getvalue()
    finally:
        signer.close()
        context.close()
