"""Scoring policy v1 gains the decisive shift for an AI declaration found in metadata (issue 12).

The metadata detector now reports a generator's own signature or an IPTC digital source type naming AI as
`ai_declared_metadata`: metadata is easy to strip but rarely forged to claim AI, so it is decisive like an
untrusted C2PA declaration, a little weaker (2.0 against 3.0). Scoring also falls back to the default shift for
codes a policy row does not name; this migration only makes the untouched default row say so explicitly.
"""

from django.db import migrations

CODE, SHIFT = "ai_declared_metadata", 2.0


def add_shift(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        decisive = dict(policy.decisive or {})
        if CODE in decisive:
            continue
        decisive[CODE] = SHIFT
        policy.decisive = decisive
        policy.save(update_fields=["decisive"])


def remove_shift(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    for policy in ScoringPolicy.objects.filter(version=1, notes__startswith="Default policy"):
        decisive = dict(policy.decisive or {})
        if decisive.pop(CODE, None) is not None:
            policy.decisive = decisive
            policy.save(update_fields=["decisive"])


class Migration(migrations.Migration):
    dependencies = [("analysis", "0008_verdict_no_manipulation_found")]

    operations = [migrations.RunPython(add_shift, remove_shift)]
