"""python manage.py ratelimit_report: what the admin monitor shows, for a terminal."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ratelimit import selectors
from ratelimit.services import ratelimit_monitor_flush


class Command(BaseCommand):
    help = "Refusals in the last hour (and the alert state), top offenders, and keys above N requests a minute."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=float, default=1, help="look back this many hours (default 1)")
        parser.add_argument("--top", type=int, default=10, help="how many offenders to list (default 10)")
        parser.add_argument("--above", type=int, default=60, help="requests per minute threshold (default 60)")
        parser.add_argument("--no-flush", action="store_true", help="do not flush pending counters first")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_flush"]:
            ratelimit_monitor_flush()
        hours, out = options["hours"], self.stdout
        alert = selectors.refusal_alert()
        state = "ALERT" if alert["firing"] else "ok"
        out.write(f"refusals in the last hour: {alert['refusals']} (threshold {alert['threshold']}): {state}")
        out.write(f"\ntop offenders, last {hours:g} h:")
        offenders = selectors.top_offenders(hours=hours, limit=options["top"])
        if not offenders:
            out.write("  none")
        for row in offenders:
            groups = ",".join(row["groups"])
            out.write(f"  {row['key']:<40} refused {row['refused']:>6}  requests {row['requests']:>7}  {groups}")
        out.write(f"\nkeys above {options['above']} requests per minute, last {hours:g} h:")
        busy = selectors.keys_above(requests_per_minute=options["above"], hours=hours)
        if not busy:
            out.write("  none")
        for row in busy:
            minute = f"{row['minute']:%Y-%m-%d %H:%M}"
            out.write(f"  {minute}  {row['key']:<40} requests {row['requests']:>6}  refused {row['refused']}")
