"""The evaluation benchmark: metrics are right, and the command writes a report and a ROC plot."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from PIL import Image

from analysis.evaluation import auc, roc_curve, tpr_at_fpr


def test_auc_counts_ties_as_half() -> None:
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9]) == 0.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([], [0.5]) is None


def test_tpr_at_five_percent_fpr_allows_no_false_positive_with_few_negatives() -> None:
    positives = [0.9, 0.7, 0.4]
    negatives = [0.1, 0.2, 0.8]  # one negative outranks two positives
    assert tpr_at_fpr(positives, negatives) == pytest.approx(1 / 3)
    assert roc_curve(positives, negatives)[0] == (0.0, 0.0) and roc_curve(positives, negatives)[-1] == (1.0, 1.0)


@pytest.mark.slow
def test_evaluate_detectors_writes_a_json_report_and_a_roc_png(db: Any, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("evaluate_detectors", "--quick", "--side", "160", "--output", str(tmp_path), stdout=out)
    text = out.getvalue()
    assert "overall" in text and "AUC" in text and "resized/re-saved" in text
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["classes"]) == {
        "splice", "copy_move", "banked_fake", "generator_metadata", "c2pa_ai", "double_jpeg", "resampling"
    }  # fmt: skip
    assert report["meta"]["items"] == len(report["items"]) > 0
    # Ground truth the local detectors must get right even on tiny crops: declared generation and banked fakes.
    assert report["classes"]["c2pa_ai"]["auc"] == 1.0
    assert report["classes"]["generator_metadata"]["auc"] == 1.0
    assert report["benign_edits"]["false_alarm_rate_likely_manipulated"] == 0.0
    with Image.open(tmp_path / "roc.png") as plot:
        assert plot.format == "PNG" and plot.width == 640
