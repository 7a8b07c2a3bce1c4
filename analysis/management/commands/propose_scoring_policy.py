"""manage.py propose_scoring_policy: fit weights on human-reviewed items, create an INACTIVE new version and
shadow-evaluate it against the active one (analysis/proposals.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.proposals import scoring_policy_propose
from hlekkr.exceptions import HlekkrError


def _line(name: str, metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return f"  {name}: -"
    return (
        f"  {name}: log-loss {metrics['log_loss']}, AUC {metrics['auc']}, "
        f"escalation rate {metrics['escalation_rate']} ({metrics['scored']}/{metrics['items']} scored)"
    )


class Command(BaseCommand):
    help = "Propose the next scoring policy from reviewed labels (created inactive; activate it in admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-samples", type=int, default=30)
        parser.add_argument("--min-per-class", type=int, default=5)
        parser.add_argument("--l2", type=float, default=1.0, help="ridge penalty on the weights")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            policy, evaluation = scoring_policy_propose(
                l2=options["l2"], min_samples=options["min_samples"], min_per_class=options["min_per_class"]
            )
        except HlekkrError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"created inactive scoring policy v{policy.version}: {policy.notes}")
        self.stdout.write("weights: " + ", ".join(f"{k}={v}" for k, v in sorted(policy.weights.items())))
        self.stdout.write(f"shadow evaluation on the last {evaluation.items} reviewed items:")
        self.stdout.write(_line("active  ", evaluation.metrics.get("active")))
        self.stdout.write(_line("proposed", evaluation.metrics.get("proposed")))
