"""Reads for the analysis API, the media detail provider and the pipeline (hash banks, Bedrock spend)."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime
from datetime import time as dtime
from typing import Any

from django.db.models import Count, Max, Prefetch, QuerySet, Sum
from django.utils import timezone

from analysis.detectors.base import HashBankEntry
from analysis.detectors.video_signature import BankedVideoEntry, FrameHash, VideoIndex
from analysis.models import Analysis, BankedHash, BankedVideo, BedrockCall, DetectorResult, HashBank
from hlekkr.accounts.models import User
from hlekkr.exceptions import NotFound
from media.models import MediaItem
from media.selectors import media_item_get_owned, visible_to


def media_for_user(*, user: User, media_id: Any) -> MediaItem:
    """The item if `user` owns it; NotFound otherwise. The API scopes exactly as the media app does (moderators
    study other clients' items through the review dashboard, not this API)."""
    return media_item_get_owned(owner=user, media_id=media_id)


def analysis_for_user(*, user: User, analysis_id: Any) -> Analysis:
    qs = Analysis.objects.select_related("media", "scoring_policy").prefetch_related(
        Prefetch("detector_results", queryset=DetectorResult.objects.order_by("detector"))
    )
    analysis = qs.filter(visible_to(user, through="media"), pk=analysis_id).first()
    if analysis is None:
        raise NotFound("No such analysis.", code="not_found")
    return analysis


def analyses_of_media(*, media: MediaItem) -> QuerySet[Analysis]:
    return Analysis.objects.filter(media=media).select_related("scoring_policy")


def latest_analysis(*, media: MediaItem, include_details: bool) -> Analysis | None:
    qs = Analysis.objects.filter(media_id=media.pk).select_related("scoring_policy").order_by("-run_number")
    if include_details:
        qs = qs.prefetch_related(Prefetch("detector_results", queryset=DetectorResult.objects.order_by("detector")))
    return qs.first()


# --- Bedrock spend ---------------------------------------------------------------------------------------------
def bedrock_spent_today_usd(now: datetime | None = None) -> float:
    """Sum of today's (UTC) Bedrock costs."""
    now = now or timezone.now()
    start = datetime.combine(now.date(), dtime.min, tzinfo=now.tzinfo)
    total = BedrockCall.objects.filter(created_at__gte=start).aggregate(total=Sum("cost_usd"))["total"]
    return float(total or 0)


# --- hash banks -------------------------------------------------------------------------------------------------
# Hash banks can hold 100k+ hashes; loading them for every analysis cost more than some detectors. They are kept
# per process and reloaded when a cheap signature of the active banks changes (two aggregate queries), or after
# BANK_CACHE_TTL_S as a backstop for in-place edits the signature cannot see (a hash or label edited in admin).
BANK_CACHE_TTL_S = 60.0
_bank_cache: dict[str, Any] = {}
_bank_cache_lock = threading.Lock()


def _bank_signature() -> tuple[Any, ...]:
    banks = tuple(
        HashBank.objects.filter(is_active=True).order_by("id").values_list("id", "name", "kind", "created_at")
    )
    rows = BankedHash.objects.filter(bank__is_active=True).aggregate(
        n=Count("id"), last=Max("id"), ids=Sum("id"), newest=Max("created_at")
    )
    return banks, rows["n"], rows["last"], rows["ids"], rows["newest"]


def _load_hash_bank_entries() -> list[HashBankEntry]:
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


_video_cache: dict[str, Any] = {}


def video_bank_index() -> Any:
    """The active banks' videos as one analysis.detectors.video_signature.VideoIndex, kept per process like the hashes
    above and rebuilt when the banked videos change."""
    active = BankedVideo.objects.filter(bank__is_active=True)
    totals = active.aggregate(n=Count("id"), last=Max("id"), ids=Sum("id"), newest=Max("created_at"))
    signature = (tuple(totals.values()), tuple(active.order_by().values_list("bank_id", flat=True).distinct()))
    now = time.monotonic()
    with _bank_cache_lock:
        if (
            _video_cache.get("signature") == signature
            and now - _video_cache.get("loaded_at", -math.inf) < BANK_CACHE_TTL_S
        ):
            return _video_cache["index"]
    rows = active.values_list("pk", "bank__name", "bank__kind", "label", "frames")
    index = VideoIndex.build(
        BankedVideoEntry(pk, bank, kind, label, [FrameHash(float(t), str(h), int(q)) for t, h, q in frames])
        for pk, bank, kind, label, frames in rows.iterator()
    )
    with _bank_cache_lock:
        _video_cache.update(signature=signature, loaded_at=now, index=index)
    return index
