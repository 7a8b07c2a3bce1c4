"""The calibration loop: a proposal fitted on weighted human verdicts, its shadow evaluation against the active
policy (log-loss, AUC, escalation rate, reliability PNG) in admin beside Activate, activation a person's act."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from analysis import scoring, shadow
from analysis.calibration import Sample, fit_logistic
from analysis.models import Analysis, AnalysisStatus, DetectorResult, ScoringPolicy, ScoringPolicyEvaluation
from hlekkr.audit.models import AuditEvent
from hlekkr.exceptions import ValidationFailed

FINDING = [{"code": "ela_regions", "text": "regions re-saved differently", "category": scoring.MANIPULATED}]


def ev(score: float, detector: str = "ela") -> list[scoring.DetectorEvidence]:
    # With a manipulation finding, so the edited-only cap (which holds P at 0.6) does not apply.
    return [scoring.DetectorEvidence(detector=detector, status="ok", score=score, reasons=FINDING)]


# --- pure parts --------------------------------------------------------------------------------------------------
def test_a_label_of_weight_two_counts_like_the_same_label_twice() -> None:
    rng = np.random.default_rng(3)
    base = [Sample({"ela": float(rng.uniform(0.05, 0.95))}, label=i % 2) for i in range(40)]
    weighted = fit_logistic([*base[:-1], Sample(base[-1].scores, base[-1].label, weight=2.0)])
    doubled = fit_logistic([*base, base[-1]])
    assert weighted.weights["ela"] == pytest.approx(doubled.weights["ela"], abs=1e-3)
    assert weighted.bias == pytest.approx(doubled.bias, abs=1e-3)


def test_auc_is_one_for_a_perfect_ranking_and_a_half_for_ties() -> None:
    assert shadow.weighted_auc([(0.1, 0, 1), (0.2, 0, 1), (0.8, 1, 1), (0.9, 1, 1)]) == 1.0
    assert shadow.weighted_auc([(0.9, 0, 1), (0.1, 1, 1)]) == 0.0
    assert shadow.weighted_auc([(0.5, 0, 1), (0.5, 1, 1)]) == 0.5
    assert shadow.weighted_auc([(0.5, 1, 1)]) is None  # one class only


def test_evaluation_reports_loss_auc_escalation_and_reliability() -> None:
    samples = [shadow.Labelled(ev(0.9), 1), shadow.Labelled(ev(0.85), 1), shadow.Labelled(ev(0.1), 0)]
    samples.append(shadow.Labelled([], 0))  # no detector scored: inconclusive, and escalated
    policy = dataclasses.replace(scoring.DEFAULT_POLICY, weights={"ela": 1.0}, bias=0.0)  # P = the ela score
    metrics = shadow.evaluate(samples, policy)
    assert metrics.items == 4 and metrics.scored == 3
    assert metrics.auc == 1.0 and metrics.log_loss is not None and metrics.log_loss < 0.5
    assert metrics.escalation_rate == pytest.approx(0.75)  # both manipulated and the unscored one go to review
    assert sum(row["weight"] for row in metrics.reliability) == pytest.approx(3)


def test_the_reliability_diagram_is_a_png() -> None:
    png = shadow.reliability_png(
        {
            "active": [{"predicted": 0.2, "observed": 0.1, "weight": 3}],
            "proposed": [
                {"predicted": 0.2, "observed": 0.2, "weight": 3},
                {"predicted": 0.8, "observed": 0.9, "weight": 1},
            ],
        }
    )
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (shadow.SIZE, shadow.SIZE)


# --- on the database ---------------------------------------------------------------------------------------------
@pytest.fixture
def reviewed(client_a: Any, stored_media: Any) -> Any:
    """reviewed(n) -> n items with a human verdict and a completed analysis whose `ela` score separates them."""

    def make(n: int, *, offset: int = 0) -> list[Any]:
        rng = np.random.default_rng(4 + offset)
        items = []
        for i in range(n):
            item = stored_media(client_a, f"reviewed-{offset}-{i}".encode())
            label = i % 2
            item.final_verdict = "likely_manipulated" if label else "likely_authentic"
            item.save(update_fields=["final_verdict"])
            analysis = Analysis.objects.create(media=item, run_number=1, status=AnalysisStatus.COMPLETED)
            score = float(np.clip(rng.normal(0.8 if label else 0.2, 0.1), 0.01, 0.99))
            DetectorResult.objects.create(
                analysis=analysis, detector="ela", detector_version="1", status="ok", score=score, reasons=FINDING
            )
            items.append(item)
        return items

    return make


def test_a_proposal_is_created_inactive_and_shadow_evaluated_against_the_active_policy(reviewed: Any) -> None:
    from analysis.proposals import scoring_policy_propose

    reviewed(40)
    policy, evaluation = scoring_policy_propose()

    assert not policy.is_active and ScoringPolicy.objects.get(is_active=True).version == 1
    assert evaluation.baseline is not None
    assert evaluation.policy == policy and evaluation.baseline.version == 1 and evaluation.items == 40
    for side in ("active", "proposed"):
        assert set(evaluation.metrics[side]) >= {"log_loss", "auc", "escalation_rate", "reliability"}
    assert evaluation.metrics["proposed"]["log_loss"] <= evaluation.metrics["active"]["log_loss"]
    assert evaluation.metrics["labels"] == {"review": 40}
    assert bytes(evaluation.reliability_png).startswith(b"\x89PNG")
    assert AuditEvent.objects.filter(action="scoring_policy.evaluated", object_id=str(policy.pk)).exists()


def test_qa_sample_decisions_weigh_double(reviewed: Any, client_a: Any) -> None:
    from analysis.calibration import reviewed_items
    from review.models import ItemStatus, ReviewItem

    items = reviewed(4)
    analysis = Analysis.objects.get(media=items[0])
    ReviewItem.objects.create(
        analysis=analysis, media=items[0], priority="low", due_at=analysis.created_at, qa_sample=True,
        status=ItemStatus.DECIDED,
    )  # fmt: skip

    weights = {item.media_id: (item.weight, item.source) for item in reviewed_items()}
    assert weights[items[0].pk] == (2.0, "qa")
    assert weights[items[1].pk] == (1.0, "review")


def test_the_shadow_window_is_the_last_n_reviewed_items(reviewed: Any, settings: Any) -> None:
    from analysis.proposals import scoring_policy_evaluate

    settings.HLEKKR_SHADOW_EVALUATION_ITEMS = 12
    reviewed(20)
    evaluation = scoring_policy_evaluate(policy=ScoringPolicy.objects.get(is_active=True))
    assert evaluation.items == 12
    assert evaluation.metrics["active"] is None  # the active policy against itself: one column


def test_no_labels_is_a_clear_refusal(db: Any) -> None:
    from analysis.proposals import scoring_policy_evaluate, scoring_policy_propose

    with pytest.raises(ValidationFailed) as refused:
        scoring_policy_propose()
    assert refused.value.code == "not_enough_labels"
    with pytest.raises(ValidationFailed):
        scoring_policy_evaluate(policy=ScoringPolicy.objects.get(is_active=True))


def test_the_weekly_task_proposes_and_never_activates(reviewed: Any) -> None:
    from analysis.tasks import propose_scoring_policy_task

    assert propose_scoring_policy_task.delay().get() is None  # no labels yet: a quiet week
    reviewed(40)
    version = propose_scoring_policy_task.delay().get()
    assert version == 2 and not ScoringPolicy.objects.get(version=2).is_active


def test_admin_shows_both_policies_beside_activate_and_activation_is_audited(reviewed: Any, admin_client: Any) -> None:
    from analysis.proposals import scoring_policy_propose

    reviewed(40)
    policy, evaluation = scoring_policy_propose()

    page = admin_client.get(f"/admin/analysis/scoringpolicy/{policy.pk}/change/").content.decode()
    assert "log-loss (lower is better)" in page and "AUC (higher is better)" in page and "escalation rate" in page
    assert "active v1" in page and f"this policy v{policy.version}" in page
    png_url = f"/admin/analysis/scoringpolicy/{policy.pk}/evaluations/{evaluation.pk}/reliability.png"
    assert png_url in page
    image = admin_client.get(png_url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    listing = admin_client.get("/admin/analysis/scoringpolicy/").content.decode()
    assert "Activate the selected policy" in listing and "Run a shadow evaluation" in listing

    admin_client.post(
        "/admin/analysis/scoringpolicy/", {"action": "evaluate", "_selected_action": [policy.pk]}, follow=True
    )
    assert ScoringPolicyEvaluation.objects.filter(policy=policy).count() == 2
    admin_client.post(
        "/admin/analysis/scoringpolicy/", {"action": "activate", "_selected_action": [policy.pk]}, follow=True
    )
    assert ScoringPolicy.objects.get(is_active=True) == policy
    assert AuditEvent.objects.filter(action="scoring_policy.activated", object_id=str(policy.pk)).exists()


def test_the_reliability_png_is_staff_only(reviewed: Any, client: Any, client_a: Any) -> None:
    from analysis.proposals import scoring_policy_propose

    reviewed(40)
    policy, evaluation = scoring_policy_propose()
    client.force_login(client_a)
    response = client.get(f"/admin/analysis/scoringpolicy/{policy.pk}/evaluations/{evaluation.pk}/reliability.png")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
