"""What the review app tells the analysis app's calibration loop (analysis/calibration.py), registered in
ReviewConfig.ready() so that analysis never imports review:

* label weights: a decision on a QA-sample item counts 2 (QA items are drawn at random from what the machine
  decided alone, so they are the unbiased labels; escalated items are the machine's hard cases);
* a gold item counts 3 (a lead settled its verdict on purpose), but only when the accepted verdict is the final
  verdict the label is read from; gold probes are never labels (they do not touch the media's verdict);
* the escalation rule of the active EscalationPolicy, so a shadow evaluation's escalation rate is the share that
  review would really receive (trust below its threshold or probability above its threshold).
"""

from __future__ import annotations

from typing import Any

QA_WEIGHT = 2.0
GOLD_WEIGHT = 3.0


def qa_label_weights(media_ids: list[Any]) -> dict[Any, tuple[float, str]]:
    from review.models import ItemStatus, ReviewItem

    decided = ReviewItem.objects.filter(
        media_id__in=media_ids, qa_sample=True, status=ItemStatus.DECIDED, is_gold_probe=False
    )
    return dict.fromkeys(decided.values_list("media_id", flat=True), (QA_WEIGHT, "qa"))


def gold_label_weights(media_ids: list[Any]) -> dict[Any, tuple[float, str]]:
    from django.db.models import F

    from review.models import GoldItem

    gold = GoldItem.objects.filter(item__media_id__in=media_ids, is_active=True, verdict=F("item__final_verdict"))
    return dict.fromkeys(gold.values_list("item__media_id", flat=True), (GOLD_WEIGHT, "gold"))


def escalates(result: Any) -> bool:
    from review.services import escalation_policy_active

    policy = escalation_policy_active()
    if result.trust_score is None or result.manipulation_probability is None:
        return True
    return bool(
        result.trust_score < policy.trust_threshold or result.manipulation_probability > policy.probability_threshold
    )


def register() -> None:
    from analysis import calibration

    calibration.register_label_weighter(qa_label_weights)
    calibration.register_label_weighter(gold_label_weights)
    calibration.register_escalation_rule(escalates)
