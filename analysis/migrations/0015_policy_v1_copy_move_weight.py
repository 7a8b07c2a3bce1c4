"""Scoring policy v1 weighs copy_move 0.75 (was 0.5), for copy_move 2.1.

copy_move 2.1 (analysis/detectors/copy_move.py) counts a region only after it is verified pixel by pixel and not
repeated elsewhere in the image, and flagged 0 of 108 authentic items of the forgery corpus's tune split while
finding 60 of 84 copy-moves (`bench/copy_move_auc.py var/corpus --split tune`: AUC 0.939). Its weight scales how
far a verified copy moves the trust score. On the tune split (`manage.py evaluate_detectors --corpus
var/corpus --split tune` with every detector, re-weighted offline as the logit sum), copy_move weights 0.5 / 0.75 /
1.0 / 1.25 / 1.5 gave copy-move trust-score AUC 0.897 / 0.925 / 0.929 / 0.930 / 0.931, splices 0.800 / 0.800 /
0.799 / 0.798 / 0.792, resampled pastes 0.736 / 0.734 / 0.731 / 0.726 / 0.722, generated 0.960 / 0.959 / 0.958 /
0.954 / 0.951, and 0 of 108 authentic items likely_manipulated at every weight. 0.75 takes most of the gain; a
larger weight would only add how far a false alarm on genuinely duplicated content (two identical windows) pushes
a real photo. Only the untouched default v1 row is changed: a weight an operator set is kept.
"""

from django.db import migrations

OLD, NEW = 0.5, 0.75


def raise_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if weights.get("copy_move") == OLD:
            policy.weights = {**weights, "copy_move": NEW}
            policy.save(update_fields=["weights"])


def restore_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if weights.get("copy_move") == NEW:
            policy.weights = {**weights, "copy_move": OLD}
            policy.save(update_fields=["weights"])


class Migration(migrations.Migration):
    dependencies = [("analysis", "0014_policy_v1_double_jpeg_weight")]

    operations = [migrations.RunPython(raise_weight, restore_weight)]
