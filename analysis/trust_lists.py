"""The C2PA trust lists that ship with Hlekkr (analysis/trust_lists/README.md: source, date, licence).

Provenance judges trust against anchors; with none configured every signer is "untrusted", and Google's or
Adobe's Content Credentials could never be Trusted. So the C2PA conformance trust list and its TSA list ship
here, dated, and operators extend or replace them by setting (`trust_anchors_text`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "trust_lists"
SHIPPED_FILES = ("C2PA-TRUST-LIST.pem", "C2PA-TSA-TRUST-LIST.pem")
SHIPPED_DATE = dt.date(2026, 8, 13)
MAX_AGE_DAYS = 180  # doctor warns past this: the lists gain and drop signers over time


@functools.cache
def shipped_anchors_pem() -> str:
    """Both shipped lists as one PEM bundle, without the `Subject\\t...` label lines c2pa does not accept."""
    lines: list[str] = []
    for name in SHIPPED_FILES:
        text = (SHIPPED_DIR / name).read_text()
        lines += [line for line in text.splitlines() if not line.startswith("Subject")]
    return "\n".join(line for line in lines if line.strip()) + "\n"


def shipped_certificate_count() -> int:
    return shipped_anchors_pem().count("-----BEGIN CERTIFICATE-----")


def shipped_age_days(today: dt.date | None = None) -> int:
    return ((today or dt.date.today()) - SHIPPED_DATE).days


def trust_anchors_text(operator_text: str | None, *, use_shipped: bool) -> str | None:
    """What the provenance detector gets as anchors: the shipped lists (unless switched off) plus the
    operator's bundle. An operator's c2pa settings document keeps its form, with the shipped anchors added to
    its `trust.trust_anchors`."""
    operator_text = operator_text if operator_text and operator_text.strip() else None
    shipped = shipped_anchors_pem() if use_shipped else None
    if operator_text is None or shipped is None:
        return operator_text or shipped
    if operator_text.lstrip().startswith("{"):
        try:
            document = json.loads(operator_text)
            trust = document["trust"]
            trust["trust_anchors"] = shipped + str(trust.get("trust_anchors") or "")
            return json.dumps(document)
        except (ValueError, KeyError, TypeError):
            return operator_text  # the detector reports the broken document as a configuration abstention
    return shipped + operator_text
