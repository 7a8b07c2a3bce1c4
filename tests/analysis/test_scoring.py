"""The trust score as pure functions: formula, decisive evidence, bands, confidence, the edited-only cap."""

from __future__ import annotations

import itertools
import math

import pytest

from analysis.scoring import (
    INCONCLUSIVE,
    LIKELY_AUTHENTIC,
    LIKELY_MANIPULATED,
    NO_MANIPULATION_FOUND,
    SUSPICIOUS,
    DetectorEvidence,
    Policy,
    capped_clean_evidence,
    logit,
    score,
    sigmoid,
)

POLICY = Policy(version=1, bias=0.0, weights={"ela": 0.5, "jpeg": 0.5, "metadata": 1.0, "copy_move": 0.5})


def ok(detector: str, p: float | None, *reasons: tuple[str, str], decisive: tuple[str, ...] = ()) -> DetectorEvidence:
    return DetectorEvidence(
        detector=detector,
        status="ok",
        score=p,
        reasons=[{"code": code, "text": code, "category": category} for code, category in reasons],
        decisive=decisive,
    )


def test_it_combines_scores_in_log_odds_space() -> None:
    result = score([ok("ela", 0.8), ok("jpeg", 0.3)], POLICY)
    expected = sigmoid(0.5 * logit(0.8) + 0.5 * logit(0.3))
    assert result.manipulation_probability == pytest.approx(expected, abs=1e-4)
    assert result.trust_score == round(100 * (1 - expected))
    assert [c["detector"] for c in result.breakdown["contributions"]] == ["ela", "jpeg"]


def test_it_clips_certain_scores_so_one_detector_cannot_reach_infinity() -> None:
    result = score([ok("ela", 1.0, ("ela_hotspot", "manipulated"))], POLICY)
    assert result.breakdown["contributions"][0]["logit"] == pytest.approx(logit(0.98), abs=1e-4)
    assert result.manipulation_probability is not None and result.manipulation_probability < 1.0


def test_the_bias_shifts_every_score() -> None:
    biased = Policy(version=2, bias=1.0, weights=POLICY.weights)  # POLICY has bias 0
    plain = score([ok("ela", 0.5, ("ela_hotspot", "manipulated"))], POLICY)
    shifted = score([ok("ela", 0.5, ("ela_hotspot", "manipulated"))], biased)
    assert plain.manipulation_probability == pytest.approx(0.5)
    assert shifted.manipulation_probability == pytest.approx(sigmoid(1.0), abs=1e-4)


def test_detectors_without_a_weight_or_score_do_not_count() -> None:
    result = score([ok("ela", 0.2), ok("faces", None, ("face_count", "info")), ok("unknown", 0.99)], POLICY)
    assert [c["detector"] for c in result.breakdown["contributions"]] == ["ela"]


def test_verdict_bands_follow_the_policy_thresholds() -> None:
    assert score([ok("metadata", 0.1)], POLICY).verdict == NO_MANIPULATION_FOUND
    assert score([ok("metadata", 0.5, ("x", "manipulated"))], POLICY).verdict == SUSPICIOUS
    assert score([ok("metadata", 0.9, ("x", "generated"))], POLICY).verdict == LIKELY_MANIPULATED
    strict = Policy(version=3, bias=0.0, weights=POLICY.weights, authentic_threshold=95, manipulated_threshold=80)
    assert score([ok("metadata", 0.1)], strict).verdict == SUSPICIOUS


def test_nothing_scored_is_inconclusive_with_the_reason() -> None:
    abstained = DetectorEvidence(
        "ela",
        "abstained",
        None,
        [{"code": "unreadable", "text": "The image could not be decoded.", "category": "info"}],
    )
    errored = DetectorEvidence("jpeg", "error", None, [{"code": "exception", "text": "boom", "category": "info"}])
    result = score([abstained, errored], POLICY)
    assert result.verdict == INCONCLUSIVE
    assert result.trust_score is None and result.manipulation_probability is None
    assert result.confidence == 0.0
    assert "could not be decoded" in result.breakdown["inconclusive_reason"]
    assert "jpeg failed" in result.breakdown["inconclusive_reason"]


def test_no_detectors_at_all_is_inconclusive() -> None:
    result = score([], POLICY)
    assert result.verdict == INCONCLUSIVE
    assert "No detector applies" in result.breakdown["inconclusive_reason"]


@pytest.mark.parametrize("code", ["ai_declared_trusted", "known_fake", "ai_declared_untrusted", "provenance_tampered"])
def test_upward_decisive_evidence_pushes_the_probability_up(code: str) -> None:
    base = score([ok("ela", 0.1), ok("jpeg", 0.1)], POLICY)
    pushed = score([ok("ela", 0.1), ok("jpeg", 0.1), ok("provenance", None, decisive=(code,))], POLICY)
    assert pushed.manipulation_probability > base.manipulation_probability  # type: ignore[operator]
    assert pushed.breakdown["decisive"][0]["code"] == code


@pytest.mark.parametrize("code", ["trusted_authentic", "known_authentic"])
def test_downward_decisive_evidence_pulls_the_probability_down(code: str) -> None:
    base = score([ok("ela", 0.6, ("ela_hotspot", "manipulated"))], POLICY)
    pulled = score([ok("ela", 0.6, ("ela_hotspot", "manipulated")), ok("x", None, decisive=(code,))], POLICY)
    assert pulled.manipulation_probability < base.manipulation_probability  # type: ignore[operator]


def test_a_trusted_ai_declaration_alone_is_likely_manipulated_with_high_confidence() -> None:
    result = score([ok("provenance", None, ("ai_declared", "generated"), decisive=("ai_declared_trusted",))], POLICY)
    assert result.verdict == LIKELY_MANIPULATED
    assert result.confidence >= 0.9


def test_a_photo_only_resized_and_resaved_stays_out_of_likely_manipulated() -> None:
    # The worst case: every detector reports only editing, strongly.
    edited = [
        ok("metadata", 0.95, ("editing_software", "edited")),
        ok("jpeg", 0.95, ("double_compression", "edited")),
        ok("ela", 0.7),
    ]
    result = score(edited, POLICY)
    assert result.verdict == SUSPICIOUS
    assert result.trust_score == POLICY.manipulated_threshold
    assert result.breakdown["edited_only_cap_applied"] is True
    assert [f["code"] for f in result.breakdown["edited"]] == ["editing_software", "double_compression"]
    assert result.breakdown["manipulated"] == [] and result.breakdown["generated"] == []


def test_manipulation_evidence_lifts_the_edited_only_cap() -> None:
    results = [
        ok("metadata", 0.95, ("editing_software", "edited")),
        ok("copy_move", 0.95, ("copy_move", "manipulated")),
        ok("ela", 0.9, ("ela_hotspot", "manipulated")),
    ]
    result = score(results, POLICY)
    assert result.verdict == LIKELY_MANIPULATED
    assert result.breakdown["edited_only_cap_applied"] is False


def test_reasons_are_kept_apart_by_category() -> None:
    result = score(
        [
            ok("metadata", 0.9, ("generator_signature", "generated"), ("editing_software", "edited")),
            ok("copy_move", 0.7, ("copy_move", "manipulated")),
            ok("known_content", 0.1, ("known_authentic_match", "authentic")),
        ],
        POLICY,
    )
    assert [f["code"] for f in result.breakdown["generated"]] == ["generator_signature"]
    assert [f["code"] for f in result.breakdown["edited"]] == ["editing_software"]
    assert [f["code"] for f in result.breakdown["manipulated"]] == ["copy_move"]
    assert [f["code"] for f in result.breakdown["authentic"]] == ["known_authentic_match"]


def test_confidence_grows_with_detector_count_and_agreement() -> None:
    one = score([ok("ela", 0.1)], POLICY).confidence
    three_agree = score([ok("ela", 0.1), ok("jpeg", 0.1), ok("copy_move", 0.1)], POLICY).confidence
    three_disagree = score([ok("ela", 0.1), ok("jpeg", 0.9), ok("copy_move", 0.1)], POLICY).confidence
    assert one < three_agree
    assert three_disagree < three_agree
    assert 0.0 <= three_disagree <= 1.0


def test_policy_refuses_unordered_bands() -> None:
    with pytest.raises(ValueError):
        Policy(version=1, authentic_threshold=40, manipulated_threshold=70)


def test_sigmoid_is_stable_for_large_inputs() -> None:
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    assert math.isclose(sigmoid(logit(0.3)), 0.3)


def abstained(detector: str, code: str) -> DetectorEvidence:
    return DetectorEvidence(detector=detector, status="abstained", reasons=[{"code": code, "text": code}])


def test_a_high_trust_score_without_positive_evidence_is_no_manipulation_found() -> None:
    clean = [ok("ela", 0.05), ok("jpeg", 0.05), ok("metadata", 0.1, ("camera_metadata", "authentic"))]
    result = score(clean, POLICY)
    assert result.trust_score is not None and result.trust_score >= POLICY.authentic_threshold
    assert result.verdict == NO_MANIPULATION_FOUND
    assert result.breakdown["positive_evidence"] is False


@pytest.mark.parametrize("code", ["trusted_authentic", "known_authentic"])
def test_likely_authentic_needs_positive_evidence(code: str) -> None:
    result = score([ok("ela", 0.05), ok("jpeg", 0.05), ok("x", None, decisive=(code,))], POLICY)
    assert result.verdict == LIKELY_AUTHENTIC
    assert result.breakdown["positive_evidence"] is True


@pytest.mark.parametrize("code", ["ai_declared_untrusted", "ai_declared_metadata", "provenance_tampered"])
def test_a_declaration_holds_the_item_in_the_manipulated_band_against_clean_forensics(code: str) -> None:
    clean = [ok("ela", 0.02), ok("jpeg", 0.02), ok("copy_move", 0.02), ok("metadata", 0.02)]
    result = score([*clean, ok("provenance", 0.85, ("ai", "generated"), decisive=(code,))], POLICY)
    assert result.verdict == LIKELY_MANIPULATED
    assert result.trust_score == POLICY.manipulated_threshold - 1
    assert result.breakdown["declaration_floor_applied"] is True


def test_a_decisive_code_missing_from_an_older_policy_row_takes_its_default_shift() -> None:
    old_row = Policy(version=9, bias=0.0, weights=POLICY.weights, decisive={"known_fake": 6.0})
    result = score(
        [ok("ela", 0.1), ok("metadata", 0.95, ("gen", "generated"), decisive=("ai_declared_metadata",))], old_row
    )
    assert result.breakdown["decisive"][0]["shift"] > 0


def test_a_stripped_image_is_examined_less_and_says_so_in_its_confidence() -> None:
    policy = Policy(version=4, bias=0.0, weights={**POLICY.weights, "provenance": 1.0})
    pixels = [ok("ela", 0.05), ok("jpeg", 0.05), ok("copy_move", 0.05), abstained("provenance", "no_data")]
    stripped = score([*pixels, abstained("metadata", "no_data")], policy)
    with_metadata = score([*pixels, ok("metadata", 0.1, ("camera_metadata", "authentic"))], policy)
    assert stripped.breakdown["examined_share"] < 0.5
    assert stripped.confidence < 0.5
    assert stripped.confidence < with_metadata.confidence


def test_a_detector_that_is_not_configured_does_not_lower_the_examined_share() -> None:
    pixels = [ok("ela", 0.05), ok("jpeg", 0.05)]
    assert score([*pixels, abstained("metadata", "not_configured")], POLICY).breakdown["examined_share"] == 1.0


def test_the_evidence_balance_counts_only_findings_not_editing_or_silence() -> None:
    result = score(
        [
            ok("jpeg", 0.95, ("double_compression", "edited")),  # editing: neither side
            ok("ela", 0.02),  # found nothing: neither side
            ok("copy_move", 0.95, ("copy_move", "manipulated")),
            ok("metadata", 0.1, ("camera_metadata", "authentic")),
        ],
        POLICY,
    )
    balance = result.breakdown["evidence_balance"]
    assert balance["manipulation"] == pytest.approx(0.5 * logit(0.95), abs=1e-3)
    assert balance["authenticity"] == pytest.approx(-1.0 * logit(0.1), abs=1e-3)
    assert balance["conflict"] == pytest.approx(min(balance["manipulation"], balance["authenticity"]))


# --- the clean-evidence cap ---------------------------------------------------------------------------------
CLEAN_SIX = dict.fromkeys(("ela", "jpeg", "spectral", "copy_move", "jpeg_grid", "generated"), 0.5)


def _clean(*names: str, p: float = 0.02) -> list[DetectorEvidence]:
    return [ok(name, p, (f"{name}_clean", "info")) for name in names]


def test_many_detectors_finding_nothing_count_only_up_to_the_cap() -> None:
    policy = Policy(version=3, bias=1.5, weights=CLEAN_SIX, clean_evidence_cap=-5.5)
    result = score(_clean(*CLEAN_SIX), policy)  # uncapped: 6 * 0.5 * logit(0.02) = -11.7, trust 100
    assert result.breakdown["clean_evidence_cap_applied"] is True
    assert result.breakdown["clean_evidence"] == pytest.approx(6 * 0.5 * logit(0.02), abs=1e-3)
    assert -5.5 < capped_clean_evidence(6 * 0.5 * logit(0.02), -5.5) < -5.4
    assert result.trust_score == 98


def test_the_cap_is_smooth_so_cleaner_still_ranks_as_more_authentic() -> None:
    counted = [capped_clean_evidence(clean, -5.5) for clean in (-1.0, -2.75, -4.0, -8.0, -12.0, -40.0)]
    assert counted[:2] == [-1.0, -2.75]  # in full down to half the cap
    assert all(a > b for a, b in itertools.pairwise(counted)) and counted[-1] >= -5.5
    policy = Policy(version=3, bias=1.5, weights=CLEAN_SIX, clean_evidence_cap=-5.5)
    cleaner, less_clean = score(_clean(*CLEAN_SIX, p=0.02), policy), score(_clean(*CLEAN_SIX, p=0.06), policy)
    assert cleaner.manipulation_probability < less_clean.manipulation_probability  # type: ignore[operator]


def test_under_the_cap_a_finding_still_moves_the_integer_score() -> None:
    capped = Policy(version=3, bias=1.5, weights=CLEAN_SIX, clean_evidence_cap=-5.5)
    uncapped = Policy(version=4, bias=1.5, weights=CLEAN_SIX, clean_evidence_cap=None)
    clean = _clean(*CLEAN_SIX)
    found = [
        *_clean("ela", "jpeg", "spectral", "copy_move", "generated"),
        ok("jpeg_grid", 0.9, ("grid", "manipulated")),
    ]
    assert score(clean, uncapped).trust_score == score(found, uncapped).trust_score == 100  # why the cap exists
    assert score(found, capped).trust_score < score(clean, capped).trust_score  # type: ignore[operator]


def test_the_cap_leaves_evidence_for_authenticity_and_few_detectors_alone() -> None:
    policy = Policy(version=3, bias=1.5, weights={**CLEAN_SIX, "metadata": 1.5, "video": 0.8}, clean_evidence_cap=-5.5)
    camera = ok("metadata", 0.02, ("camera_make", "authentic"))  # evidence *for*: never capped
    with_camera = score([*_clean(*CLEAN_SIX), camera], policy)
    counted = capped_clean_evidence(6 * 0.5 * logit(0.02), -5.5)
    assert with_camera.manipulation_probability == pytest.approx(sigmoid(1.5 + counted + 1.5 * logit(0.02)), abs=1e-4)
    video = score([ok("video", 0.05, ("video_clean", "info"))], policy)  # one detector: above the knee, unchanged
    assert video.breakdown["clean_evidence_cap_applied"] is False
    assert video.manipulation_probability == pytest.approx(sigmoid(1.5 + 0.8 * logit(0.05)), abs=1e-4)


def test_a_policy_refuses_a_positive_cap() -> None:
    with pytest.raises(ValueError, match="clean_evidence_cap"):
        Policy(version=3, clean_evidence_cap=1.0)
