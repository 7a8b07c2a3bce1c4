"""Scoring policy v1 gains a weight for the double-quantisation detector of issue 13 (double_jpeg): 1.0.

The detector only ever raises the score (p >= 0.5: a consistent double-JPEG history says nothing for authenticity),
so its weight scales how far a region without the host's history pushes. On the forgery corpus's tune split
(docs/analysis.md, "Forgery benchmark"; `bench/corpus_eval.py --split tune` with every detector, re-weighted
offline as the logit sum), weights 0 / 0.5 / 1.0 / 1.5 gave splice AUC 0.776 / 0.795 / 0.803 / 0.806 (JPEG-saved
splices 0.655 / 0.711 / 0.731 / 0.733, JPEG-then-PNG 0.702 / 0.725 / 0.739 / 0.750), copy-moves 0.835 / 0.846 /
0.851 / 0.852, and 0 of 108 authentic items likely_manipulated at every weight; 1.0 takes most of the gain
without leaning on the plateau. Only the untouched default v1 row is changed, and a weight an operator already
set is never overwritten.
"""

from django.db import migrations

WEIGHTS = {"double_jpeg": 1.0}


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
    dependencies = [("analysis", "0013_policy_v1_local_forensics_weights")]

    operations = [migrations.RunPython(add_weights, remove_weights)]
