"""The verdict `no_manipulation_found` (issue 12, docs/scoring.md "Verdicts").

`likely_authentic` used to mean "trust >= 70", which an image reaches when nothing was found. It now needs
positive evidence of authenticity (a trusted capture manifest without AI, a known-original match). Stored rows
are relabelled by the same rule: a `likely_authentic` analysis whose breakdown holds no downward decisive
evidence becomes `no_manipulation_found`, and a media item's verdict follows its latest completed analysis.
Reversing maps the new verdict back to `likely_authentic`.
"""

from django.db import migrations, models

POSITIVE = {"trusted_authentic", "known_authentic"}


def _has_positive_evidence(breakdown):
    decisive = (breakdown or {}).get("decisive") if isinstance(breakdown, dict) else None
    for entry in decisive or []:
        if isinstance(entry, dict) and entry.get("code") in POSITIVE and float(entry.get("shift") or 0) < 0:
            return True
    return False


def relabel(apps, schema_editor):
    Analysis = apps.get_model("analysis", "Analysis")
    MediaItem = apps.get_model("media", "MediaItem")
    nothing_found = [
        pk
        for pk, breakdown in Analysis.objects.filter(verdict="likely_authentic").values_list("pk", "breakdown").iterator()
        if not _has_positive_evidence(breakdown)
    ]
    for start in range(0, len(nothing_found), 500):
        Analysis.objects.filter(pk__in=nothing_found[start : start + 500]).update(verdict="no_manipulation_found")
    for item in MediaItem.objects.filter(verdict="likely_authentic").only("pk").iterator():
        latest = (
            Analysis.objects.filter(media_id=item.pk, status="completed").order_by("-run_number").values("verdict").first()
        )
        if latest and latest["verdict"] == "no_manipulation_found":
            MediaItem.objects.filter(pk=item.pk).update(verdict="no_manipulation_found")


def unlabel(apps, schema_editor):
    apps.get_model("analysis", "Analysis").objects.filter(verdict="no_manipulation_found").update(
        verdict="likely_authentic"
    )
    apps.get_model("media", "MediaItem").objects.filter(verdict="no_manipulation_found").update(
        verdict="likely_authentic"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0007_scoring_policy_defaults"),
        ("media", "0004_verdict_no_manipulation_found"),
    ]

    operations = [
        migrations.AlterField(
            model_name="analysis",
            name="verdict",
            field=models.CharField(
                blank=True,
                choices=[
                    ("likely_authentic", "Likely authentic"),
                    ("no_manipulation_found", "No manipulation found"),
                    ("suspicious", "Suspicious"),
                    ("likely_manipulated", "Likely manipulated"),
                    ("inconclusive", "Inconclusive"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(relabel, unlabel),
    ]
