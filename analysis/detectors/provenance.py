"""C2PA provenance: is there a manifest, does it bind the file (integrity), who signed it (trust), and what does
its whole ingredient graph declare?

Integrity and trust are separate findings (``evidence["integrity"]``, ``evidence["trust"]``):

* integrity holds when the active manifest's claim signature validates (``claimSignature.validated``) and no
  hash or structure check fails (``assertion.dataHash.mismatch``, ``claimSignature.mismatch``, ...);
* trust is ``trusted`` when the signer chains to a configured anchor (``signingCredential.trusted``),
  ``expired`` when the credential was not valid when it signed (``signingCredential.expired``), otherwise
  ``untrusted`` (anyone can make a certificate; without anchors c2pa-rs says "Valid" and lists
  ``signingCredential.untrusted``).

States reported in ``evidence["state"]`` (``evidence["sdk_state"]`` keeps c2pa-rs's own word): ``absent``
(abstains, ``no_data``), ``remote`` (the manifest is on a server we never fetch; abstains), ``malformed`` (the
manifest cannot be parsed; abstains, or ok without a score when c2pa-rs names a malformed part), ``tampered``
(integrity failure; decisive), ``trusted``, ``expired``, ``untrusted``, ``valid`` (intact, trusted signer, but
c2pa-rs stops short of "Trusted", e.g. an untrusted ingredient), ``invalid`` (any other failure).

Declarations are read from every manifest reachable from the active one through ingredients'
``active_manifest`` references (ChatGPT's images record only ``c2pa.opened`` in the active manifest; the
``c2pa.created`` with ``trainedAlgorithmicMedia`` and the GPT-4o software agent sit in the parent ingredient's
manifest). A declaration is an action's IPTC ``digitalSourceType`` naming AI (``AI_SOURCE_TYPES``) or a
``c2pa.created`` whose ``softwareAgent`` names a known generator; each names the manifest that made it and its
signer. With integrity intact a declaration is ``generated`` evidence whatever the trust:
``ai_declared_trusted`` when its signer is trusted (decisive), ``ai_declared_untrusted`` otherwise (strong enough
on its own to hold the item in the likely-manipulated band, see docs/scoring.md). A trusted manifest whose graph
declares no AI is ``trusted_authentic``.
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
    DetectorConfig,
    DetectorContext,
    DetectorOutput,
    MediaInput,
    Reason,
)
from analysis.detectors.metadata import GENERATOR_NAMES  # one list of generator names for both detectors

# IPTC digital source types that declare AI generation (the URL's last path segment).
AI_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "algorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "compositeSynthetic"}
)
# How deep the ingredient walk goes; real graphs are a few levels, a cycle or a hostile file must not loop.
MAX_GRAPH_MANIFESTS = 64

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
_TRUSTED = "signingCredential.trusted"
_EXPIRED = "signingCredential.expired"
_SIGNATURE_VALIDATED = "claimSignature.validated"

# Actions that create or bring in content rather than change it; every other action counts as an edit.
_NON_EDIT_ACTIONS = frozenset({"c2pa.created", "c2pa.opened", "c2pa.placed", "c2pa.published", "c2pa.repackaged"})

_REMOTE_URL = re.compile(r"https?://\S+")

PROBABILITY_TAMPERED = 0.95
PROBABILITY_AI_TRUSTED = 0.99
PROBABILITY_AI_UNTRUSTED = 0.85
PROBABILITY_TRUSTED_AUTHENTIC = 0.05


def is_malformed(code: str) -> bool:
    """c2pa-rs's names for a manifest part it could not parse (as opposed to one that parsed and failed)."""
    low = code.lower()
    return "malformed" in low or ".cbor" in low or low.startswith(("claim.json", "assertion.json"))


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


def _validation(results: Any, flat: Any = None) -> tuple[list[str], list[str], list[str]]:
    """(success, informational, failure) codes of one manifest's validation results."""
    active = results.get("activeManifest") if isinstance(results, dict) else None
    if isinstance(active, dict):
        return _codes(active.get("success")), _codes(active.get("informational")), _codes(active.get("failure"))
    # Older reports only carry the flat validation_status list, which holds failures.
    return [], [], _codes(flat)


def _integrity_holds(success: list[str], failure: list[str]) -> bool:
    # A malformed assertion is a structural finding, not a broken binding: the signature and hashes can still hold.
    if any(is_integrity_failure(code) for code in failure):
        return False
    # When the report lists successes, the claim signature must be among them; old flat reports do not.
    return _SIGNATURE_VALIDATED in success or not success


def _trust(success: list[str], failure: list[str]) -> str:
    if _EXPIRED in failure:
        return "expired"
    if _TRUSTED in success:
        return "trusted"
    return "untrusted"


def _generator_agent(agent: str) -> str | None:
    low = agent.lower()
    return next((name for needle, name in GENERATOR_NAMES if needle in low), None)


def _declarations(
    manifest: dict[str, Any], where: str, signer: str | None, trust: str, intact: bool
) -> list[dict[str, Any]]:
    found = []
    for action in _actions(manifest):
        source_type = action.get("digital_source_type", "")
        agent = action.get("software_agent", "")
        generator = _generator_agent(agent) if agent and action["action"] == "c2pa.created" else None
        if source_type not in AI_SOURCE_TYPES and generator is None:
            continue
        found.append(
            {
                "manifest": where,
                "signer": signer,
                "signer_trust": trust,
                "integrity": intact,
                "action": action["action"],
                "digital_source_type": source_type or None,
                "software_agent": agent or None,
                "generator": generator,
            }
        )
    return found


_MANIFEST_IN_URL = re.compile(r"/c2pa/([^/]+)")


def _ingredient_deltas(results: Any) -> dict[str, tuple[set[str], set[str]]]:
    """Ingredient manifest label -> (success, failure) codes the reader found that differ from the ingest record.
    Each code's URL names the manifest it is about (`self#jumbf=/c2pa/<label>/...`)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    entries = results.get("ingredientDeltas") if isinstance(results, dict) else None
    for delta in entries or []:
        changes = delta.get("validationDeltas") if isinstance(delta, dict) else None
        if not isinstance(changes, dict):
            continue
        for index, kind in ((0, "success"), (1, "failure")):
            for entry in changes.get(kind) or []:
                match = _MANIFEST_IN_URL.search(str(entry.get("url", ""))) if isinstance(entry, dict) else None
                if match and "code" in entry:
                    found.setdefault(match.group(1), (set(), set()))[index].add(str(entry["code"]))
    return found


def walk_ingredient_graph(store: dict[str, Any], active_label: Any, active_trust: str) -> dict[str, Any]:
    """Every manifest reachable from the active one through ingredients, with the AI declarations each makes.

    An ingredient's own validation (recorded when it was ingested) corrected by the reader's `ingredientDeltas`
    (c2pa-rs re-validates every ingredient manifest against today's anchors and reports what differs, e.g.
    `signingCredential.trusted` for a signer the ingesting tool did not trust) decides whether its claims stand:
    a declaration counts as intact when the ingredient's claim signature validated and no integrity check
    failed, and its signer's trust is the corrected one.
    """
    raw_manifests = store.get("manifests")
    manifests: dict[str, Any] = raw_manifests if isinstance(raw_manifests, dict) else {}
    deltas = _ingredient_deltas(store.get("validation_results"))

    visited: list[str] = []
    declarations: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    queue: list[tuple[Any, str, str, bool]] = [(active_label, "active manifest", active_trust, True)]
    while queue and len(visited) < MAX_GRAPH_MANIFESTS:
        label, where, trust, intact = queue.pop(0)
        manifest = manifests.get(label) if isinstance(label, str) else None
        if not isinstance(manifest, dict) or label in visited:
            continue
        visited.append(label)
        signer = (manifest.get("signature_info") or {}).get("issuer")
        declarations += _declarations(manifest, where, signer, trust, intact)
        for ingredient in manifest.get("ingredients") or []:
            if not isinstance(ingredient, dict) or not isinstance(ingredient.get("active_manifest"), str):
                continue
            child = ingredient["active_manifest"]
            success, _, failure = _validation(ingredient.get("validation_results"), ingredient.get("validation_status"))
            delta_success, delta_failure = deltas.get(child, (set(), set()))
            success = sorted(set(success) | delta_success)
            failure = sorted((set(failure) | delta_failure) - ({_UNTRUSTED} if _TRUSTED in delta_success else set()))
            child_intact = intact and _integrity_holds(success, failure)
            title = str(ingredient.get("title") or "untitled")
            relationship = str(ingredient.get("relationship") or "componentOf")
            edges.append({"from": label, "to": child, "title": title, "relationship": relationship})
            queue.append(
                (child, f"ingredient '{title}' ({relationship}) of {where}", _trust(success, failure), child_intact)
            )
    return {"manifests": visited, "ingredients": edges, "declarations": declarations}


def summarise_manifest_store(store: dict[str, Any]) -> dict[str, Any]:
    """The facts we keep from c2pa's JSON report: states, codes, signer, actions, the ingredient graph's
    declarations. Pure, for tests."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest = manifests.get(label) if isinstance(manifests, dict) else None
    if not isinstance(manifest, dict):
        manifest = {}
    results = store.get("validation_results") or {}
    success, informational, failure = _validation(results, store.get("validation_status"))
    ingredient_failures: set[str] = set()
    for delta in results.get("ingredientDeltas") or []:
        ingredient_failures.update(_codes((delta.get("validationDeltas") or {}).get("failure")))
    signature = manifest.get("signature_info") or {}
    actions = _actions(manifest)
    source_types = list(dict.fromkeys(a["digital_source_type"] for a in actions if "digital_source_type" in a))
    intact = bool(manifest) and _integrity_holds(success, failure)
    trust = "trusted" if store.get("validation_state") == "Trusted" else _trust(success, failure)
    graph = walk_ingredient_graph(store, label, trust)
    intact_declarations = [d for d in graph["declarations"] if d["integrity"]] if intact else []
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
        "integrity": {
            "holds": intact,
            "claim_signature_validated": _SIGNATURE_VALIDATED in success,
            "failures": [c for c in failure if is_integrity_failure(c)],
            "malformed": [c for c in failure if is_malformed(c)],
        },
        "trust": {"state": trust, "codes": [c for c in failure + success if c.startswith("signingCredential.")]},
        "actions": actions,
        "digital_source_types": source_types,
        "graph": {"manifests": graph["manifests"], "ingredients": graph["ingredients"]},
        "declarations": graph["declarations"],
        "ai_declared": bool(intact_declarations),
        "ai_declared_by_trusted_signer": any(d["signer_trust"] == "trusted" for d in intact_declarations),
    }


def classify(summary: dict[str, Any]) -> str:
    """Our state from c2pa-rs's state and failure codes (see the module docstring)."""
    failure = summary["failure"]
    if any(is_integrity_failure(code) for code in failure):
        return "tampered"
    if any(is_malformed(code) for code in failure):
        return "malformed"
    sdk_state = summary["sdk_state"]
    if sdk_state == "Trusted":
        return "trusted"
    if sdk_state == "Invalid" and any(code not in (_UNTRUSTED, _EXPIRED) for code in failure):
        return "invalid"
    if _EXPIRED in failure:
        return "expired"
    if _UNTRUSTED in failure:
        return "untrusted"
    if sdk_state == "Invalid":
        return "invalid"
    return "valid"


class ProvenanceDetector(Detector):
    """Reads and validates C2PA Content Credentials offline with c2pa-python."""

    name: ClassVar[str] = "provenance"
    version: ClassVar[str] = "2.0"
    kinds: ClassVar[frozenset[str]] = frozenset({"image", "video", "audio"})
    # Validation hashes the whole file; a long video takes a few seconds.
    time_budget_s: ClassVar[float] = 30.0

    def __init__(self, *, trust_anchors_pem: str | None = None) -> None:
        self.trust_anchors_pem = trust_anchors_pem  # PEM bundle (or c2pa settings document); None: no trust list

    @classmethod
    def configured(cls, config: DetectorConfig) -> ProvenanceDetector:
        return cls(trust_anchors_pem=config.c2pa_trust_anchors_pem)

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
        anchors = self.trust_anchors_pem
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
            return DetectorOutput(
                status="ok", probability=PROBABILITY_TAMPERED, reasons=reasons, evidence=evidence, decisive=decisive
            )
        reasons.append(_signer_reason(state, signer, summary))
        declarations = [d for d in summary["declarations"] if d["integrity"]] if summary["integrity"]["holds"] else []
        if declarations:
            trusted = summary["ai_declared_by_trusted_signer"]
            first = next((d for d in declarations if d["signer_trust"] == "trusted"), declarations[0])
            what = ", ".join(sorted({d["digital_source_type"] or f"created by {d['generator']}" for d in declarations}))
            agents = sorted({d["software_agent"] for d in declarations if d["software_agent"]})
            reasons.append(
                Reason(
                    "c2pa_ai_declared",
                    f"The {first['manifest']} (signed by {first['signer'] or 'an unnamed signer'}, "
                    f"{first['signer_trust']}) declares AI generation ({what})"
                    + (f" with {', '.join(agents)}" if agents else "")
                    + ". Its integrity holds, so the declaration counts"
                    + (" and its signer is trusted." if trusted else " although its signer is not trusted."),
                    Category.GENERATED,
                )
            )
            decisive.append(Decisive.AI_DECLARED_TRUSTED if trusted else Decisive.AI_DECLARED_UNTRUSTED)
            probability = PROBABILITY_AI_TRUSTED if trusted else PROBABILITY_AI_UNTRUSTED
        elif state == "trusted":
            reasons.append(
                Reason(
                    "c2pa_trusted_authentic",
                    "The trusted manifest and its ingredients declare no AI generation.",
                    Category.AUTHENTIC,
                )
            )
            decisive.append(Decisive.TRUSTED_AUTHENTIC)
            probability = PROBABILITY_TRUSTED_AUTHENTIC

        edits = sorted({a["action"] for a in summary["actions"] if a["action"] not in _NON_EDIT_ACTIONS})
        if edits:
            reasons.append(
                Reason("c2pa_edits_declared", f"The manifest records edits: {', '.join(edits)}.", Category.EDITED)
            )
        return DetectorOutput(
            status="ok", probability=probability, reasons=reasons, evidence=evidence, decisive=decisive
        )


def _signer_reason(state: str, signer: str, summary: dict[str, Any]) -> Reason:
    integrity = "intact" if summary["integrity"]["holds"] else "not confirmed"
    if state == "malformed":
        codes = ", ".join(summary["integrity"]["malformed"])
        return Reason(
            "c2pa_malformed",
            f"The C2PA manifest signed by {signer} has parts that do not follow the specification ({codes}); "
            f"the signature is {integrity}.",
        )
    if state == "trusted":
        return Reason("c2pa_trusted", f"Signed with Content Credentials by {signer}, a trusted signer.")
    if state == "untrusted":
        return Reason(
            "c2pa_untrusted_signer",
            f"Signed with Content Credentials by {signer}, who is not on the trust list; the signature is "
            f"{integrity} but the signer is unverified.",
        )
    if state == "expired":
        return Reason(
            "c2pa_credential_expired",
            f"Signed with Content Credentials by {signer}, whose credential was not valid at signing time as far as "
            f"can be shown (expired, no trusted timestamp); the signature is {integrity}.",
        )
    if state == "invalid":
        return Reason(
            "c2pa_invalid",
            f"The C2PA manifest signed by {signer} does not validate "
            f"({', '.join(summary['failure']) or summary['sdk_state']}); the signature is {integrity}.",
        )
    findings = ", ".join(summary["ingredient_failures"]) or "none"
    return Reason(
        "c2pa_valid",
        f"Signed with Content Credentials by {signer}; the validator did not reach full trust "
        f"(ingredient findings: {findings}).",
    )


@functools.cache
def supported_mime_types() -> frozenset[str]:
    """MIME types (and extensions) c2pa-python can read, asked once from the native library."""
    return frozenset(c2pa.Reader.get_supported_mime_types())
