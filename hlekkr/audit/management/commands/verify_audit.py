"""python manage.py verify_audit: walk the chain, report the first broken link, and events the sequencer has
not sealed beyond the bound; exit 1 on either."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hlekkr.audit.selectors import audit_chain_verify, audit_unsealed_overdue, unsealed_bound_seconds


class Command(BaseCommand):
    help = "Verify the audit log's hash chain from the first row to the last, and that no event waits unsealed."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(f"audit chain broken at {broken} ({checked} rows verified before it)")
        pending, overdue = audit_unsealed_overdue()
        if overdue:
            raise CommandError(
                f"{overdue} audit events committed more than {unsealed_bound_seconds()} s ago are not sealed into "
                f"the chain ({checked} sealed rows verified): is the sequencer (celery beat audit-seal) running?"
            )
        note = f"; {pending} events awaiting the sequencer (within {unsealed_bound_seconds()} s)" if pending else ""
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} rows verified{note}"))
