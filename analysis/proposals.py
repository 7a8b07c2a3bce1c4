"""The calibration loop's writes: propose a scoring policy from human verdicts, evaluate it in the shadow.

    scoring_policy_propose   fit (calibration.py) on every reviewed item, weighted by how clean its label is,
                             create the proposal INACTIVE, then shadow-evaluate it
    scoring_policy_evaluate  score the last N reviewed items with the policy and with the active one

Both run weekly (analysis/beat.py) and on demand (`manage.py propose_scoring_policy`, the admin action "Run a
shadow evaluation"). Neither activates anything: activation stays a person's decision in admin, through
services.scoring_policy_activate, which is audited. docs/scoring.md, "Learning from verdicts".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction

from analysis import calibration, scoring, shadow
from analysis.models import ScoringPolicy, ScoringPolicyEvaluation
from analysis.services import scoring_policy_create
from hlekkr.accounts.models import User
from hlekkr.audit.services import audit_record
from hlekkr.exceptions import ValidationFailed


def shadow_window() -> int:
    """How many of the most recently reviewed items a shadow evaluation scores (default 500)."""
    return int(settings.HLEKKR_SHADOW_EVALUATION_ITEMS)


def _escalates() -> Any:
    """The escalation rule the evaluation counts with; review's thresholds when the review app says them."""
    rule = calibration.escalation_rule()
    return rule if rule is not None else shadow.default_escalates


def scoring_policy_evaluate(
    *, policy: ScoringPolicy, actor: User | None = None, last: int | None = None
) -> ScoringPolicyEvaluation:
    """Score the last N reviewed items with `policy` and with the active policy; store both sets of metrics
    and the reliability diagram. Refused (400 `not_enough_labels`) with no usable reviewed item."""
    items = calibration.reviewed_items(last=last or shadow_window())
    if not items:
        raise ValidationFailed("No reviewed item has a usable label yet.", code="not_enough_labels")
    samples = [shadow.Labelled(evidence=item.evidence, label=item.label, weight=item.weight) for item in items]
    escalates = _escalates()
    active = ScoringPolicy.objects.filter(is_active=True).first()
    proposed = shadow.evaluate(samples, scoring.Policy.from_obj(policy), escalates)
    curves = {"proposed": proposed.reliability}
    metrics: dict[str, Any] = {"proposed": proposed.as_dict(), "active": None}
    if active is not None and active.pk != policy.pk:
        baseline = shadow.evaluate(samples, scoring.Policy.from_obj(active), escalates)
        metrics["active"] = baseline.as_dict()
        curves = {"active": baseline.reliability, **curves}
    metrics["labels"] = dict(Counter(item.source for item in items))
    metrics["positives"] = sum(item.label for item in items)
    png = shadow.reliability_png(curves, title=f"v{policy.version} on the last {len(items)} reviewed items")
    with transaction.atomic():
        evaluation = ScoringPolicyEvaluation.objects.create(
            policy=policy,
            baseline=active if active is not None and active.pk != policy.pk else None,
            items=len(items),
            metrics=metrics,
            reliability_png=png,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            actor=actor,
            action="scoring_policy.evaluated",
            target=policy,
            payload={
                "evaluation_id": evaluation.pk,
                "items": len(items),
                "baseline_version": active.version if active else None,
                "proposed": {k: metrics["proposed"][k] for k in ("log_loss", "auc", "escalation_rate")},
                "active": {k: metrics["active"][k] for k in ("log_loss", "auc", "escalation_rate")}
                if metrics["active"]
                else None,
            },
        )
    return evaluation


def scoring_policy_propose(
    *, actor: User | None = None, l2: float = 1.0, min_samples: int = 30, min_per_class: int = 5
) -> tuple[ScoringPolicy, ScoringPolicyEvaluation]:
    """Fit a proposal on every reviewed item (weighted), create it inactive and shadow-evaluate it.

    Refused (400 `not_enough_labels`) below `min_samples` usable labels or `min_per_class` of either class:
    a fit on a handful of verdicts would only add noise."""
    items = calibration.reviewed_items()
    samples = [item.sample() for item in items]
    positives = sum(s.label for s in samples)
    negatives = len(samples) - positives
    if len(samples) < min_samples or min(positives, negatives) < min_per_class:
        raise ValidationFailed(
            f"Not enough reviewed items: {len(samples)} ({positives} manipulated, {negatives} authentic); "
            f"need {min_samples} with {min_per_class} of each.",
            code="not_enough_labels",
            details={"items": len(samples), "manipulated": positives, "authentic": negatives},
        )
    base = ScoringPolicy.objects.filter(is_active=True).first()
    clip = base.clip if base else scoring.DEFAULT_POLICY.clip
    fit = calibration.fit_logistic(samples, clip=clip, l2=l2)
    # Detectors the base policy weighs but the labels never saw keep their weight rather than dropping to 0.
    weights = {**(base.weights if base else {}), **fit.weights}
    before = calibration.log_loss(samples, base.bias, base.weights, clip) if base else None
    sources = Counter(item.source for item in items)
    notes = (
        f"Proposed from {fit.samples} reviewed items ({fit.positives} manipulated; labels by source "
        f"{dict(sources)}, weighted QA 2, gold 3, review 1). Weighted log-loss of the fit on them: {fit.log_loss}"
        + (f" (active v{base.version}: {before})." if base else ".")
    )
    policy = scoring_policy_create(
        weights=weights, bias=fit.bias, base=base, notes=notes, actor=actor, proposed_by_calibration=True
    )
    return policy, scoring_policy_evaluate(policy=policy, actor=actor)
