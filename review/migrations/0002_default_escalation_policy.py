from django.db import migrations


def create_default(apps, schema_editor):
    EscalationPolicy = apps.get_model("review", "EscalationPolicy")
    if not EscalationPolicy.objects.filter(is_active=True).exists():
        EscalationPolicy.objects.create(name="default", is_active=True)


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
