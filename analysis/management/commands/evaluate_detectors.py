"""manage.py evaluate_detectors: AUC and TPR at 5 % FPR of the local pipeline on a labelled benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import scoring
from analysis.evaluation import report, run_benchmark, summary_lines, write_outputs
from analysis.models import ScoringPolicy


class Command(BaseCommand):
    help = "Evaluate the detectors and scoring on scikit-image photos with known manipulations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default=str(Path(settings.VAR_DIR) / "evaluation"), help="report folder")
        parser.add_argument("--quick", action="store_true", help="two photos, small crops (for tests)")
        parser.add_argument("--side", type=int, default=None, help="crop side in pixels (default 384, quick 256)")
        parser.add_argument("--policy-version", type=int, default=None, help="score with this policy version")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["policy_version"] is not None:
            row = ScoringPolicy.objects.filter(version=options["policy_version"]).first()
            if row is None:
                raise CommandError(f"no scoring policy v{options['policy_version']}")
        else:
            row = ScoringPolicy.objects.filter(is_active=True).first()
        policy = scoring.Policy.from_obj(row) if row else scoring.DEFAULT_POLICY
        outcomes, meta = run_benchmark(
            policy=policy, quick=options["quick"], side=options["side"], progress=self.stdout.write
        )
        result = report(outcomes, meta)
        json_path, png_path = write_outputs(result, Path(options["output"]))
        for line in summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(f"report: {json_path}\nROC plot: {png_path}")
