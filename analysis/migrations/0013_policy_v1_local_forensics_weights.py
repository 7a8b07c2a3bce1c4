"""Scoring policy v1 gains weights for the detectors of issue 13: jpeg_local, noise_residual and generated.

jpeg_local (a block misfit to the image's own JPEG quantisation) counts like ELA and the DCT detector (0.3);
generated (up-sampling traces, a small model fitted on the repository's own corpus) 0.5, like copy_move;
noise_residual 0.0: it ranked splices at chance on the forgery corpus (docs/analysis.md), so its heatmap is shown
to moderators but it does not move the score. Only the untouched default v1 row is changed, and a weight an
operator already set is never overwritten.
"""

from django.db import migrations

WEIGHTS = {"jpeg_local": 0.3, "noise_residual": 0.0, "generated": 0.5}


def add_weights(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = dict(policy.weights or {})
        missing = {k: v for k, v in WEIGHTS.items() if k not in weights}
        if missing:
            policy.weights = {**weights, **missing}
            policy.save(update_fields=["weights"])


def remove_weights(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        weights = {k: v for k, v in (policy.weights or {}).items() if k not in WEIGHTS}
        policy.weights = weights
        policy.save(update_fields=["weights"])


class Migration(migrations.Migration):
    dependencies = [("analysis", "0012_banked_video")]

    operations = [migrations.RunPython(add_weights, remove_weights)]
