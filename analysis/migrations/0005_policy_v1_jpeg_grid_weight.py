"""Scoring policy v1 gains a weight for the jpeg_grid detector (blocking-grid misalignment, see
analysis/detectors/jpeg_grid.py and docs/scoring.md).

Before it, v1 had no jpeg_grid weight, so the detector's findings counted for nothing. 0.5 matches copy_move:
a local manipulation cue that alone moves a neutral item into "suspicious" but not past the manipulated
threshold. Only a v1 row created by migration 0003 (notes "Default policy ...") that has no jpeg_grid weight
yet is touched, so a weight an operator set in admin is never overwritten.
"""

from django.db import migrations

WEIGHT = 0.5


def add_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if "jpeg_grid" in weights:
            continue
        weights["jpeg_grid"] = WEIGHT
        policy.weights = weights
        policy.save(update_fields=["weights"])


def remove_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if weights.pop("jpeg_grid", None) is not None:
            policy.weights = weights
            policy.save(update_fields=["weights"])


class Migration(migrations.Migration):
    dependencies = [("analysis", "0004_bedrock_call")]
    operations = [migrations.RunPython(add_weight, remove_weight)]
