"""The operations guide's alerts with its thresholds; editable in admin afterwards."""

from django.db import migrations

DEFAULTS = [
    # kind, comparison, threshold, window_minutes, periods, min_count, description
    ("review_queue_depth", "gt", 100, 5, 2, 0,
     "Average review queue depth above 100 in two consecutive 5-minute periods (guide: target < 50, alert > 100)."),
    ("api_error_rate", "gt", 1.0, 5, 1, 50,
     "5xx responses above 1 % of requests in the last 5 minutes (guide: target < 0.1 %, alert > 1 %)."),
    ("api_p95_latency", "gt", 500, 5, 1, 50,
     "95th percentile response time above 500 ms in the last 5 minutes (guide: target < 200 ms, alert > 500 ms)."),
    ("stuck_analyses", "gt", 0, 15, 1, 0,
     "Analyses still running more than window_minutes after they started (the task time limit is 15 minutes)."),
    ("upload_success_rate", "lt", 99.9, 60, 1, 20,
     "Upload requests answered 2xx below 99.9 % in the last hour (guide: S3 upload success > 99.9 %)."),
    ("ratelimit_refusals", "gt", 100, 60, 1, 0,
     "More than 100 rate-limit refusals (429) in the last hour."),
    ("worker_heartbeat", "gt", 0, 2, 1, 0,
     "A worker queue has had no heartbeat for window_minutes (heartbeats arrive every 30 s)."),
]


def forwards(apps, schema_editor):
    AlertRule = apps.get_model("ops", "AlertRule")
    for kind, comparison, threshold, window, periods, min_count, description in DEFAULTS:
        AlertRule.objects.get_or_create(
            kind=kind,
            defaults={
                "comparison": comparison,
                "threshold": threshold,
                "window_minutes": window,
                "periods": periods,
                "min_count": min_count,
                "description": description,
            },
        )


def backwards(apps, schema_editor):
    apps.get_model("ops", "AlertRule").objects.filter(kind__in=[d[0] for d in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("ops", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
