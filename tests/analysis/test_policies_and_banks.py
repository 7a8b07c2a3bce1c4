"""Scoring policies (default v1, activation, calibration proposals) and hash-bank imports."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from analysis import scoring
from analysis.calibration import Sample, fit_logistic, label_from_verdict
from analysis.models import Analysis, AnalysisStatus, BankedHash, DetectorResult, HashBank, ScoringPolicy
from analysis.services import scoring_policy_activate, scoring_policy_create
from hlekkr.audit.models import AuditEvent


def test_the_default_policy_v1_is_active_and_matches_the_documented_defaults(db: Any) -> None:
    policy = ScoringPolicy.objects.get(is_active=True)
    assert policy.version == 1
    assert scoring.Policy.from_obj(policy) == dataclasses.replace(scoring.DEFAULT_POLICY, version=1)


def test_a_policy_row_starts_from_the_one_set_of_defaults() -> None:
    row = ScoringPolicy(version=5)
    assert scoring.Policy.from_obj(row) == dataclasses.replace(scoring.DEFAULT_POLICY, version=5)
    row.weights["ela"] = 9.0  # each row gets its own dict, never the shared default's
    assert scoring.DEFAULT_POLICY.weights["ela"] != 9.0
    assert ScoringPolicy(version=6).weights["ela"] == scoring.DEFAULT_POLICY.weights["ela"]


def test_a_policy_created_without_a_base_carries_the_default_bands(db: Any) -> None:
    policy = scoring_policy_create(weights={"ela": 1.0}, bias=0.5, base=None, notes="")
    numbers = scoring.Policy.from_obj(policy)
    assert numbers.decisive == scoring.DEFAULT_POLICY.decisive and numbers.clip == scoring.DEFAULT_POLICY.clip
    assert (numbers.authentic_threshold, numbers.manipulated_threshold) == (70, 40)


def test_activating_a_policy_flips_atomically_and_is_audited(admin_user: Any) -> None:
    v2 = scoring_policy_create(weights={"ela": 1.0}, bias=0.5, base=ScoringPolicy.objects.get(version=1), notes="")
    assert not v2.is_active
    scoring_policy_activate(policy=v2, actor=admin_user)
    assert list(ScoringPolicy.objects.filter(is_active=True).values_list("version", flat=True)) == [2]
    event = AuditEvent.objects.filter(action="scoring_policy.activated").get()
    assert event.payload == {"version": 2, "previous": [1]}


def test_the_admin_action_activates_exactly_one_policy(admin_user: Any) -> None:
    v2 = scoring_policy_create(weights={"ela": 1.0}, bias=0.0, base=None, notes="")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/analysis/scoringpolicy/", {"action": "activate", "_selected_action": [v2.pk]}, follow=True
    )
    assert response.status_code == 200
    assert ScoringPolicy.objects.get(is_active=True).version == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weights", {"ela": "heavy"}),
        ("weights", ["ela", 1.0]),
        ("decisive", {"known_fake": None}),
        ("clip", 0.0),
        ("clip", 0.5),
        ("bias", float("nan")),
    ],
)
def test_a_policy_the_scorer_cannot_use_is_refused_in_admin(admin_user: Any, field: str, value: Any) -> None:
    from django.core.exceptions import ValidationError

    policy = ScoringPolicy(version=9, weights={"ela": 1.0}, decisive=dict(scoring.DEFAULT_DECISIVE))
    policy.full_clean()  # the good one passes
    setattr(policy, field, value)
    with pytest.raises(ValidationError) as refused:
        policy.full_clean()
    assert field in refused.value.message_dict


def test_admin_shows_the_error_instead_of_saving_an_unusable_policy(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/analysis/scoringpolicy/add/",
        {
            "version": 9,
            "bias": "0",
            "weights": '{"ela": "heavy"}',
            "decisive": "{}",
            "clip": "0.02",
            "authentic_threshold": "70",
            "manipulated_threshold": "40",
            "edited_only_cap": "on",
            "notes": "",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "finite numbers" in response.content.decode()
    assert not ScoringPolicy.objects.filter(version=9).exists()


def test_calibration_labels_come_from_the_human_verdict() -> None:
    assert label_from_verdict("likely_manipulated") == 1
    assert label_from_verdict("generated") == 1
    assert label_from_verdict("authentic") == 0
    assert label_from_verdict("suspicious") is None
    assert label_from_verdict("") is None


def test_logistic_fit_recovers_a_separating_detector() -> None:
    rng = np.random.default_rng(1)
    samples = []
    for i in range(200):
        label = i % 2
        good = float(np.clip(rng.normal(0.8 if label else 0.2, 0.1), 0.01, 0.99))
        noise = float(rng.uniform(0.05, 0.95))
        samples.append(Sample(scores={"good": good, "noise": noise}, label=label))
    fit = fit_logistic(samples)
    assert fit.weights["good"] > 1.0
    assert abs(fit.weights["noise"]) < 0.3
    assert fit.log_loss < 0.4


def test_propose_scoring_policy_creates_an_inactive_version_from_reviewed_items(
    client_a: Any, stored_media: Any
) -> None:
    rng = np.random.default_rng(2)
    for i in range(40):
        item = stored_media(client_a, f"item-{i}".encode())
        label = i % 2
        item.final_verdict = "likely_manipulated" if label else "likely_authentic"
        item.save(update_fields=["final_verdict"])
        analysis = Analysis.objects.create(media=item, run_number=1, status=AnalysisStatus.COMPLETED)
        score = float(np.clip(rng.normal(0.75 if label else 0.25, 0.1), 0.01, 0.99))
        DetectorResult.objects.create(analysis=analysis, detector="ela", detector_version="1", status="ok", score=score)
    out = io.StringIO()
    call_command("propose_scoring_policy", stdout=out)
    proposed = ScoringPolicy.objects.get(version=2)
    assert not proposed.is_active and proposed.proposed_by_calibration
    assert proposed.weights["ela"] > 1.0
    assert proposed.weights["metadata"] == scoring.DEFAULT_WEIGHTS["metadata"]  # unseen detectors keep theirs
    assert ScoringPolicy.objects.get(is_active=True).version == 1
    assert "created inactive scoring policy v2" in out.getvalue()


def test_propose_scoring_policy_refuses_with_too_few_labels(db: Any) -> None:
    with pytest.raises(CommandError, match=r"(?i)not enough reviewed items"):
        call_command("propose_scoring_policy")


# --- hash banks --------------------------------------------------------------------------------------------------
HASH_A = "a" * 64
HASH_B = "0123456789abcdef" * 4


def test_import_hashes_validates_skips_duplicates_and_reports_counts(db: Any, tmp_path: Path) -> None:
    bank = HashBank.objects.create(name="fakes", kind="known_fake")
    BankedHash.objects.create(bank=bank, pdq_hash=HASH_A)
    csv_file = tmp_path / "hashes.csv"
    csv_file.write_text(
        "pdq_hash,quality,label\n"
        f"{HASH_A},90,already there\n"
        f"{HASH_B.upper()},80,viral fake\n"
        f"{HASH_B},80,repeated in file\n"
        "not-a-hash,10,x\n"
        f"{'f' * 64},900,bad quality\n"
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("import_hashes", "fakes", str(csv_file), stdout=out, stderr=err)
    assert "imported 1, skipped 2 duplicates, 2 invalid" in out.getvalue()
    assert "line 5: pdq_hash must be 64 hexadecimal characters" in err.getvalue()
    added = BankedHash.objects.get(bank=bank, pdq_hash=HASH_B)
    assert (added.quality, added.label) == (80, "viral fake")


def test_import_hashes_needs_a_kind_to_create_a_bank(db: Any, tmp_path: Path) -> None:
    csv_file = tmp_path / "h.csv"
    csv_file.write_text(f"{HASH_A}\n")
    with pytest.raises(CommandError, match="pass --kind"):
        call_command("import_hashes", "originals", str(csv_file))
    call_command("import_hashes", "originals", str(csv_file), "--kind", "known_authentic", stdout=io.StringIO())
    assert HashBank.objects.get(name="originals").hashes.count() == 1


def test_active_banks_reach_the_detector_context_and_the_pdq_settings_the_detector(db: Any, settings: Any) -> None:
    from analysis import steps
    from analysis.detectors.known_content import KnownContentDetector

    settings.HLEKKR_PDQ_MAX_DISTANCE = 20
    live = HashBank.objects.create(name="live", kind="known_fake")
    off = HashBank.objects.create(name="off", kind="known_fake", is_active=False)
    BankedHash.objects.create(bank=live, pdq_hash=HASH_A, label="x")
    BankedHash.objects.create(bank=off, pdq_hash=HASH_B)
    context = steps.LOCAL.context()
    assert [(e.bank, e.hash_hex, e.bank_kind) for e in context.hash_banks] == [("live", HASH_A, "known_fake")]
    known = next(d for d in steps.LOCAL.detectors() if isinstance(d, KnownContentDetector))
    assert (known.max_distance, known.min_quality) == (20, 50)


def test_the_configured_anchors_extend_the_shipped_trust_lists(settings: Any, tmp_path: Path) -> None:
    from analysis import trust_lists
    from analysis.conf import c2pa_trust_anchors_pem as trust_anchors_pem

    shipped = trust_lists.shipped_anchors_pem()
    pem = tmp_path / "anchors.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = str(pem)
    assert trust_anchors_pem() == shipped + pem.read_text()
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = str(tmp_path / "missing.pem")
    assert trust_anchors_pem() == shipped
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = ""
    assert trust_anchors_pem() == shipped


def test_an_operator_can_replace_the_shipped_trust_lists(settings: Any, tmp_path: Path) -> None:
    from analysis.conf import c2pa_trust_anchors_pem as trust_anchors_pem

    pem = tmp_path / "anchors.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.HLEKKR_C2PA_SHIPPED_TRUST_LIST = False
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = str(pem)
    assert trust_anchors_pem() == pem.read_text()
    settings.HLEKKR_C2PA_TRUST_ANCHORS_FILE = ""
    assert trust_anchors_pem() is None


def test_the_shipped_lists_are_both_c2pa_lists_without_their_label_lines() -> None:
    from analysis import trust_lists

    pem = trust_lists.shipped_anchors_pem()
    assert trust_lists.shipped_certificate_count() == 52  # 30 claim signers + 22 time-stamping authorities
    assert "Subject" not in pem
    assert (trust_lists.SHIPPED_DIR / "LICENSE").read_text().startswith("Attribution 4.0 International")


def test_an_operator_settings_document_gets_the_shipped_anchors_added() -> None:
    import json

    from analysis import trust_lists

    document = json.dumps({"trust": {"trust_anchors": "OPERATOR"}})
    merged = json.loads(trust_lists.trust_anchors_text(document, use_shipped=True) or "{}")
    assert merged["trust"]["trust_anchors"] == trust_lists.shipped_anchors_pem() + "OPERATOR"
