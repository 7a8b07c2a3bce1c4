"""manage.py evaluate_detectors: how well the pipeline separates authentic from edited, manipulated and generated
media, and what review load the active policies give.

Without --corpus: the synthetic benchmark (analysis/evaluation.py: scikit-image photos with known
manipulations). With --corpus DIR: the user's own labelled media (analysis/corpus.py), escalated with the review
app's rules. The command lives in the ops roof because it needs both analysis and review (review imports
analysis, never the other way).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import conf, corpus, scoring
from analysis.evaluation import report, run_benchmark, summary_lines, write_outputs
from analysis.models import ScoringPolicy


class Command(BaseCommand):
    help = "Evaluate detectors, trust score and escalation on the synthetic benchmark or on a labelled corpus."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--corpus", default=None, help="folder of labelled media (labels.csv or label folders)")
        parser.add_argument("--split", choices=corpus.SPLITS, default=None, help="only this split of labels.csv")
        parser.add_argument("--json", action="store_true", help="print the report as JSON only (for CI)")
        parser.add_argument("--output", default=str(Path(settings.VAR_DIR) / "evaluation"), help="report folder")
        parser.add_argument("--quick", action="store_true", help="synthetic: two photos, small crops (for tests)")
        parser.add_argument("--side", type=int, default=None, help="synthetic: crop side in pixels (384, quick 256)")
        parser.add_argument("--policy-version", type=int, default=None, help="score with this policy version")

    def handle(self, *args: Any, **options: Any) -> None:
        policy = self._policy(options["policy_version"])
        if options["corpus"]:
            result, lines = self._corpus(Path(options["corpus"]), options["split"], policy, options)
        else:
            if options["split"]:
                raise CommandError("--split needs --corpus")
            progress = None if options["json"] else self.stdout.write
            outcomes, meta = run_benchmark(
                policy=policy, quick=options["quick"], side=options["side"], progress=progress
            )
            result = report(outcomes, meta)
            json_path, png_path = write_outputs(result, Path(options["output"]))
            lines = [*summary_lines(result), f"report: {json_path}\nROC plot: {png_path}"]
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        for line in lines:
            self.stdout.write(line)

    @staticmethod
    def _policy(version: int | None) -> scoring.Policy:
        if version is not None:
            row = ScoringPolicy.objects.filter(version=version).first()
            if row is None:
                raise CommandError(f"no scoring policy v{version}")
        else:
            row = ScoringPolicy.objects.filter(is_active=True).first()
        return scoring.Policy.from_obj(row) if row else scoring.DEFAULT_POLICY

    def _corpus(
        self, root: Path, split: str | None, policy: scoring.Policy, options: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        from analysis import steps
        from review import escalation
        from review.services import escalation_policy_active, escalation_thresholds

        try:
            items = corpus.load_items(root, split=split)
        except corpus.CorpusError as exc:
            raise CommandError(str(exc)) from exc
        thresholds = escalation_thresholds(escalation_policy_active())

        def escalate(payload: dict[str, Any]) -> tuple[bool, int, bool]:
            outcome = escalation.evaluate(payload, thresholds)
            if outcome is None:
                return False, 0, False
            return True, outcome.reviewers_required, outcome.qa_sample

        started = time.perf_counter()
        detectors = steps.LOCAL.detectors()  # as the worker builds them: configured from settings
        outcomes, skipped = corpus.run_corpus(
            items,
            detectors=detectors,
            context=steps.LOCAL.context(),
            policy=policy,
            escalate=escalate,
            budget_scale=conf.detector_budget_scale(),
            progress=None if options["json"] else self.stdout.write,
        )
        if not outcomes:
            raise CommandError(f"none of the {len(items)} files is of a type Hlekkr accepts")
        meta = {
            "corpus": str(root),
            "split": split,
            "files": len(outcomes),
            "skipped": len(skipped),
            "skipped_files": skipped[:50],
            "policy_version": policy.version,
            "escalation_thresholds": vars(thresholds),
            "detectors": [d.name for d in detectors],
            "seconds": round(time.perf_counter() - started, 1),
        }
        result = corpus.report(outcomes, meta)
        paths = corpus.write_outputs(result, Path(options["output"]))
        lines = [*corpus.summary_lines(result), *(f"{name}: {path}" for name, path in paths.items())]
        return result, lines
