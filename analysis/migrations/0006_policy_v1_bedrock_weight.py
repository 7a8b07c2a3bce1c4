"""Scoring policy v1 gains a weight for the Bedrock ensemble (analysis/detectors/bedrock.py, docs/bedrock.md).

Without it a configured Bedrock ensemble was recorded but counted for nothing. 1.0 treats the models' combined
answer like one solid detector: it can move an item a band on its own but not past decisive evidence. The
detector is off unless HLEKKR_BEDROCK_MODELS is set, so installs without Bedrock score exactly as before.
Like 0005, only the untouched default v1 row is changed (before any release carried it).
"""

from django.db import migrations

WEIGHT = 1.0


def add_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if "bedrock" in weights:
            continue
        weights["bedrock"] = WEIGHT
        policy.weights = weights
        policy.save(update_fields=["weights"])


def remove_weight(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        if weights.pop("bedrock", None) is not None:
            policy.weights = weights
            policy.save(update_fields=["weights"])


class Migration(migrations.Migration):
    dependencies = [("analysis", "0005_policy_v1_jpeg_grid_weight")]
    operations = [migrations.RunPython(add_weight, remove_weight)]
