"""python manage.py verify_audit: walk the chain, report the first broken link, exit 1 if any."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hlekkr.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain from the first row to the last."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(f"audit chain broken at {broken} ({checked} rows verified before it)")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} rows verified"))
