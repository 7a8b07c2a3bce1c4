"""Review items keep the machine verdict they were created with; relabel it like analysis 0008 did."""

from django.db import migrations, models


def relabel(apps, schema_editor):
    ReviewItem = apps.get_model("review", "ReviewItem")
    ReviewItem.objects.filter(machine_verdict="likely_authentic", analysis__verdict="no_manipulation_found").update(
        machine_verdict="no_manipulation_found"
    )


def unlabel(apps, schema_editor):
    apps.get_model("review", "ReviewItem").objects.filter(machine_verdict="no_manipulation_found").update(
        machine_verdict="likely_authentic"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0002_default_escalation_policy"),
        ("analysis", "0008_verdict_no_manipulation_found"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reviewitem",
            name="machine_verdict",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.RunPython(relabel, unlabel),
    ]
