"""C2PA provenance: is there a manifest, does it match the file, who signed it, and what does it declare?

States reported in ``evidence["state"]`` (``evidence["sdk_state"]`` keeps c2pa-rs's own word):

* ``absent``     no manifest; abstains with ``no_data``.
* ``remote``     the file points at a manifest stored on a server. We never fetch it (detectors stay off the
                 network, and fetching would tell the publisher who is looking); abstains with ``no_data``.
* ``untrusted``  the signature and hashes check out but the signer does not chain to a configured trust
                 anchor. Without anchors c2pa-rs says "Valid" and lists ``signingCredential.untrusted``;
                 we report that as untrusted, because anyone can make a certificate.
* ``valid``      the active manifest's signer is trusted and intact but c2pa-rs stops short of "Trusted"
                 (for example an ingredient signed by an untrusted party).
* ``trusted``    valid and signed by a certificate that chains to ``context.c2pa_trust_anchors_pem`` (a PEM
                 bundle, or a c2pa settings JSON document whose ``trust`` section is used).
* ``tampered``   an integrity failure: the file or the manifest changed after signing
                 (``assertion.dataHash.mismatch``, ``claimSignature.mismatch``, ...). Decisive.
* ``invalid``    c2pa-rs rejects the manifest for another reason (expired or unsuitable certificate,
                 malformed claim); the claims cannot be relied on, but that is not evidence of tampering.

AI generation is read from the ``digitalSourceType`` of the active manifest's ``c2pa.actions``. A
declaration by a trusted signer is ``ai_declared_trusted``; by anyone else ``ai_declared_untrusted`` (people
rarely claim AI falsely, so it still counts, less strongly). A trusted manifest without such a declaration is
``trusted_authentic``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, ClassVar

import c2pa

from analysis.detectors.base import (
    AbstainCode,
    Category,
    Decisive,
    Detector,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)

# IPTC digital source types that declare AI generation (the URL's last path segment).
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "algorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})

# Failure codes that mean bytes changed after signing, as opposed to a credential or format problem.
_INTEGRITY_CODES = frozenset(
    {
        "assertion.missing",
        "assertion.undeclared",
        "assertion.notRedacted",
        "assertion.boxesHash.unknownBox",
        "claim.missing",
        "claimSignature.missing",
    }
)
_UNTRUSTED = "signingCredential.untrusted"

# Actions that create or bring in content rather than change it; every other action counts as an edit.
_NON_EDIT_ACTIONS = frozenset({"c2pa.created", "c2pa.opened", "c2pa.placed", "c2pa.published", "c2pa.repackaged"})

_REMOTE_URL = re.compile(r"https?://\S+")

PROBABILITY_TAMPERED = 0.95
PROBABILITY_AI_TRUSTED = 0.99
PROBABILITY_AI_UNTRUSTED = 0.85
PROBABILITY_TRUSTED_AUTHENTIC = 0.05


def is_integrity_failure(code: str) -> bool:
    # timeStamp.mismatch speaks about the time-stamp token, not the content, and is informational anyway.
    if code.startswith("timeStamp."):
        return False
    return code.endswith(".mismatch") or code in _INTEGRITY_CODES


def offline_settings(trust_anchors_pem: str | None) -> dict[str, Any]:
    """c2pa settings that never touch the network, with the given anchors (if any) as the trust list."""
    settings: dict[str, Any] = {
        "verify": {
            # Remote manifests and OCSP would both make the worker talk to third parties.
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
            "verify_trust": True,
            "verify_after_reading": True,
        }
    }
    if trust_anchors_pem and trust_anchors_pem.strip():
        settings["trust"] = _trust_section(trust_anchors_pem)
    return settings


def _trust_section(anchors: str) -> dict[str, Any]:
    """A PEM bundle, or a c2pa settings document's trust section (the form c2pa's test anchors ship in)."""
    if not anchors.lstrip().startswith("{"):
        return {"trust_anchors": anchors}
    try:
        document = json.loads(anchors)
    except ValueError as exc:
        raise c2pa.C2paError(f"trust anchors JSON cannot be parsed: {exc}") from exc
    trust = document.get("trust") if isinstance(document, dict) else None
    if not isinstance(trust, dict) or not trust.get("trust_anchors"):
        raise c2pa.C2paError("trust anchors JSON has no trust.trust_anchors")
    # Only the trust fields: a settings document must not be able to switch network fetching back on.
    keys = ("trust_anchors", "trust_config", "allowed_list", "user_anchors")
    return {key: str(trust[key]) for key in keys if trust.get(key)}


def _codes(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return sorted({str(e["code"]) for e in entries if isinstance(e, dict) and "code" in e})


def _source_type_name(value: Any) -> str:
    # Source types are IPTC URLs (http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia).
    return str(value).rstrip("/").rsplit("/", 1)[-1]


def _software_agent(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", ""))
    return "" if value is None else str(value)


def _actions(manifest: dict[str, Any]) -> list[dict[str, str]]:
    actions: list[dict[str, str]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        data = assertion.get("data")
        listed = data.get("actions") if isinstance(data, dict) else None
        for action in listed or []:
            if not isinstance(action, dict):
                continue
            entry = {"action": str(action.get("action", ""))}
            if action.get("softwareAgent"):
                entry["software_agent"] = _software_agent(action["softwareAgent"])
            if action.get("digitalSourceType"):
                entry["digital_source_type"] = _source_type_name(action["digitalSourceType"])
            if action.get("when"):
                entry["when"] = str(action["when"])
            actions.append(entry)
    return actions


def summarise_manifest_store(store: dict[str, Any]) -> dict[str, Any]:
    """The facts we keep from c2pa's JSON report: states, codes, signer, actions. Pure, for tests."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest = manifests.get(label) if isinstance(manifests, dict) else None
    if not isinstance(manifest, dict):
        manifest = {}
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    if results:
        failure = _codes(active.get("failure"))
        informational = _codes(active.get("informational"))
    else:
        # Older reports only carry the flat validation_status list, which holds failures.
        failure = _codes(store.get("validation_status"))
        informational = []
    ingredient_failures: set[str] = set()
    for delta in results.get("ingredientDeltas") or []:
        ingredient_failures.update(_codes((delta.get("validationDeltas") or {}).get("failure")))
    signature = manifest.get("signature_info") or {}
    actions = _actions(manifest)
    source_types = list(dict.fromkeys(a["digital_source_type"] for a in actions if "digital_source_type" in a))
    return {
        "sdk_state": store.get("validation_state"),
        "active_manifest": label,
        "signer": signature.get("issuer"),
        "signer_common_name": signature.get("common_name"),
        "signed_at": signature.get("time"),
        "signature_alg": signature.get("alg"),
        "claim_generator": manifest.get("claim_generator")
        or ", ".join(str(g.get("name", "")) for g in manifest.get("claim_generator_info") or []),
        "failure": failure,
        "informational": informational,
        "ingredient_failures": sorted(ingredient_failures),
        "actions": actions,
        "digital_source_types": source_types,
        "ai_declared": any(t in AI_SOURCE_TYPES for t in source_types),
    }


def classify(summary: dict[str, Any]) -> str:
    """Our state from c2pa-rs's state and failure codes (see the module docstring)."""
    failure = summary["failure"]
    if any(is_integrity_failure(code) for code in failure):
        return "tampered"
    sdk_state = summary["sdk_state"]
    if sdk_state == "Trusted":
        return "trusted"
    if sdk_state == "Invalid":
        return "invalid"
    if _UNTRUSTED in failure:
        return "untrusted"
    return "valid"


class ProvenanceDetector(Detector):
    """Reads and validates C2PA Content Credentials offline with c2pa-python."""

    name: ClassVar[str] = "provenance"
    version: ClassVar[str] = "1.0"
    kinds: ClassVar[frozenset[str]] = frozenset({"image", "video", "audio"})
    # Validation hashes the whole file; a long video takes a few seconds.
    time_budget_s: ClassVar[float] = 30.0

    def applies(self, media: MediaInput) -> DetectorOutput | None:
        refusal = super().applies(media)
        if refusal is not None:
            return refusal
        if media.mime not in supported_mime_types():
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT, f"C2PA cannot be read from {media.mime or 'this'} files."
            )
        if media.size == 0:
            return DetectorOutput.abstain(AbstainCode.UNREADABLE, "The file is empty.")
        return None

    def run(self, media: MediaInput, context: DetectorContext) -> DetectorOutput:
        anchors = context.c2pa_trust_anchors_pem
        trust_configured = bool(anchors and anchors.strip())
        try:
            c2pa_context = c2pa.Context.from_dict(offline_settings(anchors))
        except c2pa.C2paError as exc:
            return DetectorOutput.abstain(
                AbstainCode.NOT_CONFIGURED,
                "The configured C2PA trust anchors could not be loaded.",
                error=str(exc),
            )
        try:
            store = self._read(media, c2pa_context)
        except c2pa.C2paError.ManifestNotFound:
            return DetectorOutput.abstain(AbstainCode.NO_DATA, "no C2PA manifest", state="absent")
        except c2pa.C2paError.NotSupported as exc:
            return DetectorOutput.abstain(
                AbstainCode.UNSUPPORTED_FORMAT, "C2PA cannot be read from this file type.", error=str(exc)
            )
        except c2pa.C2paError as exc:
            return self._read_failure(str(exc))
        finally:
            c2pa_context.close()

        summary = summarise_manifest_store(store)
        state = classify(summary)
        evidence = {"state": state, "trust_anchors_configured": trust_configured, **summary}
        return self._judge(state, summary, evidence)

    @staticmethod
    def _read(media: MediaInput, c2pa_context: c2pa.Context) -> dict[str, Any]:
        # Stream from disk: a video may be far larger than we want to hold in memory.
        with media.path.open("rb") as stream, c2pa.Reader(media.mime, stream, None, c2pa_context) as reader:
            report = json.loads(reader.json())
        if not isinstance(report, dict):
            raise c2pa.C2paError("manifest report is not an object")
        return report

    @staticmethod
    def _read_failure(message: str) -> DetectorOutput:
        # c2pa-python raises a plain C2paError whose text starts with "Remote:" for remote manifests.
        if message.startswith("Remote"):
            match = _REMOTE_URL.search(message)
            url = match.group(0) if match else None
            return DetectorOutput(
                status="abstained",
                abstain_code=AbstainCode.NO_DATA,
                reasons=[
                    Reason(
                        code="c2pa_remote_manifest",
                        text="The file points to a C2PA manifest stored online, which is not fetched.",
                    )
                ],
                evidence={"state": "remote", "remote_url": url, "error": message},
            )
        if "could not be parsed" in message:
            # The container itself is broken (truncated JPEG and the like), not the manifest.
            return DetectorOutput.abstain(
                AbstainCode.UNREADABLE, "The file could not be parsed.", state="unreadable", error=message
            )
        return DetectorOutput(
            status="abstained",
            abstain_code=AbstainCode.UNREADABLE,
            reasons=[Reason(code="c2pa_malformed", text="The file carries C2PA data that cannot be parsed.")],
            evidence={"state": "malformed", "error": message},
        )

    @staticmethod
    def _judge(state: str, summary: dict[str, Any], evidence: dict[str, Any]) -> DetectorOutput:
        signer = summary["signer"] or "an unnamed signer"
        reasons: list[Reason] = []
        decisive: list[Decisive] = []
        probability: float | None = None

        if state == "tampered":
            codes = ", ".join(c for c in summary["failure"] if is_integrity_failure(c))
            reasons.append(
                Reason(
                    "c2pa_tampered",
                    f"The file or its C2PA manifest changed after {signer} signed it ({codes}).",
                    Category.MANIPULATED,
                )
            )
            decisive.append(Decisive.PROVENANCE_TAMPERED)
            probability = PROBABILITY_TAMPERED
        elif state == "invalid":
            reasons.append(
                Reason(
                    "c2pa_invalid",
                    f"The C2PA manifest signed by {signer} does not validate "
                    f"({', '.join(summary['failure']) or summary['sdk_state']}); "
                    "its claims cannot be relied on.",
                )
            )
        else:
            trusted = state == "trusted"
            if trusted:
                reasons.append(
                    Reason("c2pa_trusted", f"Signed with Content Credentials by {signer}, a trusted signer.")
                )
            elif state == "untrusted":
                reasons.append(
                    Reason(
                        "c2pa_untrusted_signer",
                        f"Signed with Content Credentials by {signer}, who is not on the trust list; "
                        "the signature is intact but the signer is unverified.",
                    )
                )
            else:
                findings = ", ".join(summary["ingredient_failures"]) or "none"
                reasons.append(
                    Reason(
                        "c2pa_valid",
                        f"Signed with Content Credentials by {signer}; the validator did not reach "
                        f"full trust (ingredient findings: {findings}).",
                    )
                )
            if summary["ai_declared"]:
                types = ", ".join(t for t in summary["digital_source_types"] if t in AI_SOURCE_TYPES)
                reasons.append(
                    Reason(
                        "c2pa_ai_declared",
                        f"The manifest declares AI generation ({types})"
                        + ("." if trusted else ", from a signer that is not trusted."),
                        Category.GENERATED,
                    )
                )
                decisive.append(Decisive.AI_DECLARED_TRUSTED if trusted else Decisive.AI_DECLARED_UNTRUSTED)
                probability = PROBABILITY_AI_TRUSTED if trusted else PROBABILITY_AI_UNTRUSTED
            elif trusted:
                reasons.append(
                    Reason(
                        "c2pa_trusted_authentic",
                        "The trusted manifest declares no AI generation.",
                        Category.AUTHENTIC,
                    )
                )
                decisive.append(Decisive.TRUSTED_AUTHENTIC)
                probability = PROBABILITY_TRUSTED_AUTHENTIC

        edits = sorted({a["action"] for a in summary["actions"] if a["action"] not in _NON_EDIT_ACTIONS})
        if edits and state != "tampered":
            reasons.append(
                Reason("c2pa_edits_declared", f"The manifest records edits: {', '.join(edits)}.", Category.EDITED)
            )
        return DetectorOutput(
            status="ok", probability=probability, reasons=reasons, evidence=evidence, decisive=decisive
        )


@functools.cache
def supported_mime_types() -> frozenset[str]:
    """MIME types (and extensions) c2pa-python can read, asked once from the native library."""
    return frozenset(c2pa.Reader.get_supported_mime_types())
