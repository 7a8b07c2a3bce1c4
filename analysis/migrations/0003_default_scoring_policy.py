"""Scoring policy v1: the weights docs/scoring.md explains, active from the first migrate.

Tuned on the evaluate_detectors benchmark (skimage photos: authentic vs spliced, copy-moved, re-compressed,
resampled, generator PNGs, C2PA AI-declared, banked fakes). The numbers are written out here, not imported, so
this migration means the same thing forever; tests check analysis.scoring's defaults still agree.
"""

from django.db import migrations

WEIGHTS = {
    "metadata": 1.5,
    "ela": 0.35,
    "jpeg": 0.3,
    "spectral": 0.35,
    "copy_move": 0.5,
    "provenance": 1.0,
    "known_content": 1.0,
    "video": 0.8,
    "audio": 0.6,
}
DECISIVE = {
    "ai_declared_trusted": 6.0,
    "known_fake": 6.0,
    "ai_declared_untrusted": 3.0,
    "provenance_tampered": 3.0,
    "trusted_authentic": -3.0,
    "known_authentic": -4.0,
}


def create_v1(apps, schema_editor):
    ScoringPolicy = apps.get_model("analysis", "ScoringPolicy")
    if ScoringPolicy.objects.filter(version=1).exists():
        return
    ScoringPolicy.objects.create(
        version=1,
        is_active=not ScoringPolicy.objects.filter(is_active=True).exists(),
        bias=1.5,
        weights=WEIGHTS,
        decisive=DECISIVE,
        clip=0.02,
        authentic_threshold=70,
        manipulated_threshold=40,
        edited_only_cap=True,
        notes="Default policy created by migration 0003.",
    )


def remove_v1(apps, schema_editor):
    apps.get_model("analysis", "ScoringPolicy").objects.filter(version=1, notes__startswith="Default policy").delete()


class Migration(migrations.Migration):
    dependencies = [("analysis", "0002_policy_cap_and_timings")]
    operations = [migrations.RunPython(create_v1, remove_v1)]
