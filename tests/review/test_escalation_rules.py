"""review/escalation.py is pure: the rules that decide whether a human looks, how urgently and with what skills."""

from __future__ import annotations

from review.escalation import Thresholds, evaluate, human_trust, is_inconsistent, qa_sampled

T = Thresholds()


def payload(**kw):
    base = {
        "analysis_id": "a1",
        "trust_score": 90,
        "manipulation_probability": 0.1,
        "confidence": 0.8,
        "kind": "image",
        "decisive": [],
        "detector_scores": {"ela": 0.1, "metadata": 0.12},
        "faces": 0,
        "review_requested": False,
        "priority": "normal",
    }
    base.update(kw)
    return base


def test_a_confident_authentic_item_is_not_escalated() -> None:
    assert evaluate(payload(analysis_id="not-sampled-0"), Thresholds(qa_sample_rate=0)) is None


def test_low_trust_or_high_probability_escalates_with_reasons() -> None:
    result = evaluate(payload(trust_score=35, manipulation_probability=0.65), T)
    assert result is not None
    assert {r["code"] for r in result.reasons} == {"low_trust", "high_probability"}
    assert result.priority == "medium"
    assert result.reviewers_required == 1


def test_priority_follows_probability_and_decisive_evidence() -> None:
    assert evaluate(payload(trust_score=5, manipulation_probability=0.95), T).priority == "critical"  # type: ignore[union-attr]
    assert evaluate(payload(trust_score=20, manipulation_probability=0.8), T).priority == "high"  # type: ignore[union-attr]
    assert (
        evaluate(payload(trust_score=45, manipulation_probability=0.55, decisive=["known_fake"]), T).priority  # type: ignore[union-attr]
        == "critical"
    )
    assert (
        evaluate(payload(trust_score=60, manipulation_probability=0.4, decisive=["ai_declared_trusted"]), T).priority  # type: ignore[union-attr]
        == "high"
    )


def test_client_urgency_bumps_priority_and_client_requests_escalate() -> None:
    result = evaluate(payload(review_requested=True, priority="urgent"), T)
    assert result is not None
    assert [r["code"] for r in result.reasons] == ["client_requested"]
    assert result.priority == "medium" and result.client_urgent


def test_strong_weighted_evidence_on_both_sides_needs_two_reviewers() -> None:
    balance = {"manipulation": 4.0, "authenticity": 3.5, "conflict": 3.5}
    result = evaluate(payload(trust_score=50, manipulation_probability=0.5, evidence_balance=balance), T)
    assert result is not None and result.reviewers_required == 2 and result.detector_disagreement
    assert "detector_disagreement" in [r["code"] for r in result.reasons]


def test_a_weak_detector_far_from_the_others_is_not_a_disagreement() -> None:
    # The old rule's flood: one "edited" detector at 0.9 against others at 0.02 sent benign photos to two people.
    scores = {"jpeg": 0.9, "ela": 0.02, "metadata": 0.02}
    balance = {"manipulation": 0.0, "authenticity": 5.8, "conflict": 0.0}
    result = evaluate(
        payload(analysis_id="x", detector_scores=scores, evidence_balance=balance), Thresholds(qa_sample_rate=0)
    )
    assert result is None


def test_one_strong_side_alone_is_one_reviewer() -> None:
    balance = {"manipulation": 9.0, "authenticity": 1.0, "conflict": 1.0}
    result = evaluate(payload(trust_score=5, manipulation_probability=0.95, evidence_balance=balance), T)
    assert result is not None and result.reviewers_required == 1 and not result.detector_disagreement


def test_a_payload_without_an_evidence_balance_has_no_conflict() -> None:
    result = evaluate(payload(trust_score=50, manipulation_probability=0.5, evidence_balance="nonsense"), T)
    assert result is not None and result.reviewers_required == 1


def test_expertise_comes_from_kind_and_evidence() -> None:
    result = evaluate(
        payload(
            trust_score=10, manipulation_probability=0.9, kind="video", faces=2, decisive=["ai_declared_untrusted"]
        ),
        T,
    )
    assert result is not None
    assert result.required_expertise == ["video", "face_manipulation", "provenance", "generated"]
    audio = evaluate(
        payload(trust_score=10, manipulation_probability=0.9, kind="audio"), T, reason_categories=["generated"]
    )
    assert audio is not None and audio.required_expertise == ["audio_voice", "generated"]


def test_the_qa_sample_is_deterministic_and_near_the_rate() -> None:
    picks = [qa_sampled(f"analysis-{i}", 0.02) for i in range(20000)]
    assert picks == [qa_sampled(f"analysis-{i}", 0.02) for i in range(20000)]
    assert 0.015 < sum(picks) / len(picks) < 0.025
    sampled = next(f"analysis-{i}" for i, p in enumerate(picks) if p)
    result = evaluate(payload(analysis_id=sampled), T)
    assert result is not None and result.qa_sample and result.priority == "low"


def test_the_guides_inconsistency_validator() -> None:
    assert human_trust("authentic", 1.0) == 100 and human_trust("manipulated", 1.0) == 0
    assert is_inconsistent(
        verdict="authentic", confidence=0.9, machine_trust=10, machine_confidence=0.9, gap=30, min_confidence=0.8
    )
    assert not is_inconsistent(
        verdict="authentic", confidence=0.9, machine_trust=10, machine_confidence=0.7, gap=30, min_confidence=0.8
    )
    assert not is_inconsistent(
        verdict="manipulated", confidence=0.9, machine_trust=10, machine_confidence=0.9, gap=30, min_confidence=0.8
    )


def test_an_ai_declaration_in_metadata_is_high_priority_and_needs_generated_expertise() -> None:
    result = evaluate(payload(trust_score=20, manipulation_probability=0.7, decisive=["ai_declared_metadata"]), T)
    assert result is not None and result.priority == "high"
    assert "generated" in result.required_expertise
