"""Evaluation on a user's own labelled media: labels from folders or labels.csv, the real pipeline, the report."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image, PngImagePlugin
from skimage import data

from analysis.corpus import CorpusError, load_items

SD = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 96x96, Model: sd15"


def photo_jpeg(path: Path, crop: int = 0, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()[crop : crop + 128, crop : crop + 128]).save(path, "JPEG", quality=quality)


def generated_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", SD)
    Image.fromarray(data.chelsea()[:128, :128]).save(path, pnginfo=info)


def test_labels_come_from_folder_names_with_subfolders_as_subtypes(tmp_path: Path) -> None:
    photo_jpeg(tmp_path / "authentic" / "a.jpg")
    generated_png(tmp_path / "generated" / "sd" / "g.png")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("ignored: not a label folder")

    items = load_items(tmp_path)

    assert [(i.relative, i.label, i.subtype) for i in items] == [
        ("authentic/a.jpg", "authentic", ""),
        ("generated/sd/g.png", "generated", "sd"),
    ]


def test_labels_csv_wins_and_a_split_can_be_chosen(tmp_path: Path) -> None:
    photo_jpeg(tmp_path / "x" / "a.jpg")
    generated_png(tmp_path / "x" / "g.png")
    (tmp_path / "labels.csv").write_text(
        "path,label,subtype,split\nx/a.jpg,authentic,camera,eval\nx/g.png,generated,gan,tune\n"
    )

    assert [i.label for i in load_items(tmp_path)] == ["authentic", "generated"]
    only_eval = load_items(tmp_path, split="eval")
    assert [(i.relative, i.subtype, i.split) for i in only_eval] == [("x/a.jpg", "camera", "eval")]


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("file,label\na.jpg,authentic\n", "lacks the column"),
        ("path,label\na.jpg,fake\n", "is not one of"),
        ("path,label\n../outside.jpg,authentic\n", "not a file inside the corpus"),
        ("path,label,subtype,split\na.jpg,authentic,,train\n", "split 'train'"),
    ],
)
def test_a_bad_labels_csv_is_refused_with_the_line(tmp_path: Path, csv_text: str, message: str) -> None:
    photo_jpeg(tmp_path / "a.jpg")
    photo_jpeg(tmp_path.parent / "outside.jpg")
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(CorpusError, match=message):
        load_items(tmp_path)


def test_an_unlabelled_folder_is_refused(tmp_path: Path) -> None:
    photo_jpeg(tmp_path / "photos" / "a.jpg")
    with pytest.raises(CorpusError, match="no labelled files"):
        load_items(tmp_path)


@pytest.mark.slow
def test_the_command_runs_the_pipeline_and_reports_separation_verdicts_and_review_load(db: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for i in range(3):
        photo_jpeg(corpus / "authentic" / f"a{i}.jpg", crop=40 * i)
        generated_png(corpus / "generated" / f"g{i}.png")
    (corpus / "authentic" / "notes.txt").write_text("not media: skipped")
    out = io.StringIO()

    call_command("evaluate_detectors", "--corpus", str(corpus), "--json", "--output", str(tmp_path / "out"), stdout=out)

    report = json.loads(out.getvalue())  # --json prints only JSON
    assert report["meta"]["files"] == 6 and report["meta"]["skipped"] == 1
    generated = report["classes"]["generated"]
    assert generated["trust_score"]["auc"] == 1.0
    assert generated["detectors"]["metadata"]["auc"] == 1.0
    assert report["confusion"]["matrix"]["generated"]["likely_manipulated"] == 3
    assert report["targets"]["generated_outside_authentic_and_nothing_found_rate"] == 1.0
    assert report["targets"]["authentic_called_manipulated_rate"] == 0.0
    assert set(report["review"]["authentic"]) >= {"escalation_rate", "two_reviewer_rate"}
    assert report["detector_time"]["metadata"]["mean_ms"] >= 0
    for name in ("roc.png", "reliability.png", "corpus-report.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert Image.open(tmp_path / "out" / "reliability.png").size == (520, 520)


def test_the_command_refuses_a_corpus_it_cannot_read(db: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no labelled files"):
        call_command("evaluate_detectors", "--corpus", str(tmp_path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--split needs --corpus"):
        call_command("evaluate_detectors", "--split", "eval", stdout=io.StringIO())
