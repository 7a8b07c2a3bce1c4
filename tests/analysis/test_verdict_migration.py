"""Migration analysis/0008 relabels stored verdicts by the new rule: likely_authentic needs positive evidence."""

from __future__ import annotations

import hashlib
import importlib
import uuid
from typing import Any

from django.apps import apps

from analysis.models import Analysis
from media.models import MediaItem

relabel = importlib.import_module("analysis.migrations.0008_verdict_no_manipulation_found").relabel


def media(owner: Any) -> MediaItem:
    return MediaItem.objects.create(
        owner=owner,
        kind="image",
        sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        status="stored",
        verdict="likely_authentic",
    )


def analysis(item: MediaItem, run: int, verdict: str, decisive: list[dict[str, Any]]) -> Analysis:
    return Analysis.objects.create(
        media=item, run_number=run, status="completed", verdict=verdict, breakdown={"decisive": decisive}
    )


def test_likely_authentic_without_positive_evidence_becomes_no_manipulation_found(db: Any, client_a: Any) -> None:
    nothing = media(client_a)
    old_run = analysis(nothing, 1, "likely_authentic", [])
    latest = analysis(nothing, 2, "likely_authentic", [{"code": "ai_declared_untrusted", "shift": 3.0}])
    vouched = media(client_a)
    trusted = analysis(vouched, 1, "likely_authentic", [{"code": "trusted_authentic", "shift": -3.0}])
    flagged = analysis(media(client_a), 1, "suspicious", [])

    relabel(apps, None)

    for row, verdict in ((old_run, "no_manipulation_found"), (latest, "no_manipulation_found"),
                         (trusted, "likely_authentic"), (flagged, "suspicious")):  # fmt: skip
        row.refresh_from_db()
        assert row.verdict == verdict
    nothing.refresh_from_db()
    vouched.refresh_from_db()
    assert (nothing.verdict, vouched.verdict) == ("no_manipulation_found", "likely_authentic")
