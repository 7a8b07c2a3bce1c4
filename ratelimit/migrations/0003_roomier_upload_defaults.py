"""Uploads: 30 per minute and 600 per hour per client (was 10/m and 200/h).

A newsroom sending a batch of photos, or a client that uploads, completes and deletes in one minute, hit 10/m
in normal use: `upload` counts every media write (direct uploads, multipart completes, deletes, aborts).
Only rows still at the old defaults change; a policy an admin has edited is left alone."""

from django.db import migrations

CHANGES = [("10/m", "30/m"), ("200/h", "600/h")]


def forwards(apps, schema_editor):
    Policy = apps.get_model("ratelimit", "RateLimitPolicy")
    for old, new in CHANGES:
        if not Policy.objects.filter(group="upload", key_type="user", rate=new).exists():
            Policy.objects.filter(group="upload", key_type="user", rate=old).update(rate=new)


def backwards(apps, schema_editor):
    Policy = apps.get_model("ratelimit", "RateLimitPolicy")
    for old, new in CHANGES:
        if not Policy.objects.filter(group="upload", key_type="user", rate=old).exists():
            Policy.objects.filter(group="upload", key_type="user", rate=new).update(rate=old)


class Migration(migrations.Migration):
    dependencies = [("ratelimit", "0002_default_policies")]
    operations = [migrations.RunPython(forwards, backwards)]
