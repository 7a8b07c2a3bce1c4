"""manage.py propose_scoring_policy: fit weights on human-reviewed items and create an INACTIVE new version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.calibration import fit_logistic, log_loss, reviewed_samples
from analysis.models import ScoringPolicy
from analysis.scoring import DEFAULT_POLICY
from analysis.services import scoring_policy_create


class Command(BaseCommand):
    help = "Propose the next scoring policy from reviewed labels (created inactive; activate it in admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-samples", type=int, default=30)
        parser.add_argument("--min-per-class", type=int, default=5)
        parser.add_argument("--l2", type=float, default=1.0, help="ridge penalty on the weights")

    def handle(self, *args: Any, **options: Any) -> None:
        samples = reviewed_samples()
        positives = sum(s.label for s in samples)
        negatives = len(samples) - positives
        if len(samples) < options["min_samples"] or min(positives, negatives) < options["min_per_class"]:
            raise CommandError(
                f"not enough reviewed items: {len(samples)} ({positives} manipulated, {negatives} authentic); "
                f"need {options['min_samples']} with {options['min_per_class']} of each"
            )
        base = ScoringPolicy.objects.filter(is_active=True).first()
        clip = base.clip if base else DEFAULT_POLICY.clip
        fit = fit_logistic(samples, clip=clip, l2=options["l2"])
        # Detectors the base policy weighs but the labels never saw keep their weight rather than dropping to 0.
        weights = {**(base.weights if base else {}), **fit.weights}
        before = log_loss(samples, base.bias, base.weights, clip) if base else None
        notes = (
            f"Proposed from {fit.samples} reviewed items ({fit.positives} manipulated). "
            f"Log-loss on them: {fit.log_loss}" + (f" (active v{base.version}: {before})." if base else ".")
        )
        policy = scoring_policy_create(
            weights=weights, bias=fit.bias, base=base, notes=notes, proposed_by_calibration=True
        )
        self.stdout.write(f"created inactive scoring policy v{policy.version}: {notes}")
        self.stdout.write("weights: " + ", ".join(f"{k}={v}" for k, v in sorted(weights.items())))
