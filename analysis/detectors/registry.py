"""Which detectors the pipeline runs, in what order, and what context it hands them.

Order matters only for reading: cheap metadata and provenance facts first, then pixel forensics, then the
informational face count, then the container-level video and audio detectors. Each detector decides for itself
whether it applies to a kind (`Detector.kinds` / `applies`); the pipeline records an abstention for the rest, so
every analysis has one row per registered detector.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from analysis.detectors.base import Detector, DetectorContext, HashBankEntry

logger = logging.getLogger(__name__)

DETECTOR_CLASSES: tuple[tuple[str, str], ...] = (
    ("analysis.detectors.metadata", "MetadataDetector"),
    ("analysis.detectors.provenance", "ProvenanceDetector"),
    ("analysis.detectors.known_content", "KnownContentDetector"),
    ("analysis.detectors.ela", "ElaDetector"),
    ("analysis.detectors.jpeg", "JpegDetector"),
    ("analysis.detectors.spectral", "SpectralDetector"),
    ("analysis.detectors.jpeg_grid", "JpegGridDetector"),
    ("analysis.detectors.copy_move", "CopyMoveDetector"),
    ("analysis.detectors.faces", "FacesDetector"),
    ("analysis.detectors.video", "VideoDetector"),
    ("analysis.detectors.audio", "AudioDetector"),
)


@lru_cache(maxsize=1)
def detector_classes() -> tuple[type[Detector], ...]:
    """The registered detector classes, imported once per process.

    A module that fails to import is logged and skipped rather than taking every analysis down with it; the
    detail view then simply lacks that detector, and the import error is in the worker log.
    """
    classes: list[type[Detector]] = []
    for module_name, class_name in DETECTOR_CLASSES:
        try:
            classes.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            logger.exception("detector %s.%s could not be loaded", module_name, class_name)
    return tuple(classes)


def detectors() -> list[Detector]:
    """Fresh instances for one analysis (detectors keep no state between runs, but instances are cheap)."""
    return [cls() for cls in detector_classes()]


def applicable_kinds() -> dict[str, list[str]]:
    """Detector name -> media kinds it examines (for docs, admin and the evidence bundle)."""
    return {cls.name: sorted(cls.kinds) for cls in detector_classes()}


def trust_anchors_pem() -> str | None:
    """The C2PA trust anchors: the shipped lists (analysis/trust_lists.py) unless HLEKKR_C2PA_SHIPPED_TRUST_LIST
    is false, plus the bundle in HLEKKR_C2PA_TRUST_ANCHORS_FILE. None when neither applies."""
    from analysis import conf, trust_lists

    path = conf.c2pa_trust_anchors_file()
    text: str | None = None
    if path:
        try:
            text = Path(path).read_text()
        except OSError:
            # Misconfiguration must be loud in the log but must not fail every analysis: provenance then judges
            # with the shipped lists alone (or none), which is the honest answer without the operator's anchors.
            logger.error("HLEKKR_C2PA_TRUST_ANCHORS_FILE %s cannot be read", path)
    return trust_lists.trust_anchors_text(text, use_shipped=conf.c2pa_shipped_trust_list())


# Hash banks can hold 100k+ hashes; loading them for every analysis cost more than some detectors. They are kept
# per process and reloaded when a cheap signature of the active banks changes (two aggregate queries), or after
# BANK_CACHE_TTL_S as a backstop for in-place edits the signature cannot see (a hash or label edited in admin).
BANK_CACHE_TTL_S = 60.0
_bank_cache: dict[str, Any] = {}
_bank_cache_lock = threading.Lock()


def _bank_signature() -> tuple[Any, ...]:
    from django.db.models import Count, Max, Sum

    from analysis.models import BankedHash, HashBank

    banks = tuple(
        HashBank.objects.filter(is_active=True).order_by("id").values_list("id", "name", "kind", "created_at")
    )
    rows = BankedHash.objects.filter(bank__is_active=True).aggregate(
        n=Count("id"), last=Max("id"), ids=Sum("id"), newest=Max("created_at")
    )
    return banks, rows["n"], rows["last"], rows["ids"], rows["newest"]


def _load_hash_bank_entries() -> list[HashBankEntry]:
    from analysis.models import BankedHash

    rows = BankedHash.objects.filter(bank__is_active=True).values_list("bank__name", "bank__kind", "pdq_hash", "label")
    return [
        HashBankEntry(bank=name, bank_kind=kind, hash_hex=h, label=label)  # type: ignore[arg-type]
        for name, kind, h, label in rows
    ]


def hash_bank_entries() -> list[HashBankEntry]:
    """Every hash of every active bank, as plain entries the known_content detector can match against."""
    signature = _bank_signature()
    now = time.monotonic()
    with _bank_cache_lock:
        if (
            _bank_cache.get("signature") == signature
            and now - _bank_cache.get("loaded_at", -math.inf) < BANK_CACHE_TTL_S
        ):
            return list(_bank_cache["entries"])
    entries = _load_hash_bank_entries()
    with _bank_cache_lock:
        _bank_cache.update(signature=signature, loaded_at=now, entries=entries)
    return list(entries)


def build_context() -> DetectorContext:
    """The DetectorContext for one analysis, loaded from the database and settings."""
    from analysis import conf

    return DetectorContext(
        hash_banks=hash_bank_entries(),
        c2pa_trust_anchors_pem=trust_anchors_pem(),
        pdq_max_distance=conf.pdq_max_distance(),
        pdq_min_quality=conf.pdq_min_quality(),
    )
