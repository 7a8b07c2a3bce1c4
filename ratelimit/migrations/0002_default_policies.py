"""Default policies (the same as ratelimit.policies.DEFAULT_POLICIES, copied so this migration never changes)."""

from django.db import migrations

MULTIPLIERS = {"client": 1, "moderator": 2, "lead": 3, "admin": 5}
DEFAULTS = [
    ("auth", "ip", "5/5m", {}, "Login and token endpoints, per client IP (failed and in-flight attempts)"),
    ("upload", "user", "10/m", MULTIPLIERS, "Uploads and other writes, per user"),
    ("upload", "user", "200/h", MULTIPLIERS, "Uploads and other writes, hourly cap per user"),
    ("upload_init", "user", "5/m", MULTIPLIERS, "Multipart upload initiation, per user"),
    ("read", "user", "60/m", MULTIPLIERS, "Reads, per user"),
    ("review", "user", "30/m", MULTIPLIERS, "Review actions (API and dashboard), per moderator"),
    ("webhooks", "user", "30/m", MULTIPLIERS, "Webhook endpoint management, per user"),
]


def create_defaults(apps, schema_editor):
    Policy = apps.get_model("ratelimit", "RateLimitPolicy")
    for group, key_type, rate, multipliers, description in DEFAULTS:
        Policy.objects.get_or_create(
            group=group,
            key_type=key_type,
            rate=rate,
            defaults={"role_multipliers": dict(multipliers), "description": description, "enabled": True},
        )


def remove_defaults(apps, schema_editor):
    Policy = apps.get_model("ratelimit", "RateLimitPolicy")
    for group, key_type, rate, _, _ in DEFAULTS:
        Policy.objects.filter(group=group, key_type=key_type, rate=rate).delete()


class Migration(migrations.Migration):
    dependencies = [("ratelimit", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, remove_defaults)]
