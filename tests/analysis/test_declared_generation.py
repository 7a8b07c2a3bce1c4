"""The issue-12 symptom end to end: a clean-looking image that declares AI generation is never called authentic.

Every registered detector runs (as the worker runs them) and the default policy scores the result. Fixtures are
made here with c2pa-python and a throwaway CA: never third-party AI images.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from skimage import data

from analysis import scoring
from analysis.c2pa_signing import ai_created_actions, make_test_ca, manifest_definition, opened_actions, sign_bytes
from analysis.detectors import registry
from analysis.detectors.base import DetectorConfig, DetectorContext, MediaInput
from analysis.pipeline import run_detectors, score_runs


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()[:256, :256]).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def outcome(tmp_path: Path, content: bytes) -> scoring.ScoreResult:
    path = tmp_path / "item.jpg"
    path.write_bytes(content)
    media = MediaInput(path=path, kind="image", mime="image/jpeg", size=len(content))
    runs = list(run_detectors(registry.detectors(DetectorConfig()), media, DetectorContext()))
    return score_runs(runs, scoring.DEFAULT_POLICY)


def test_the_clean_photo_itself_is_no_manipulation_found_with_low_confidence(tmp_path: Path) -> None:
    result = outcome(tmp_path, photo())
    assert result.verdict == scoring.NO_MANIPULATION_FOUND
    assert result.confidence < 0.5  # no metadata, no manifest: little could be examined


def test_a_declaration_held_only_in_a_parent_ingredient_is_likely_manipulated(tmp_path: Path) -> None:
    generated = sign_bytes(photo(), make_test_ca("Test Generator"), manifest_definition(ai_created_actions()))
    published = sign_bytes(
        photo(), make_test_ca("Test Chat App"), manifest_definition(opened_actions()), parent=generated
    )

    result = outcome(tmp_path, published)

    assert result.verdict == scoring.LIKELY_MANIPULATED
    assert [f["code"] for f in result.breakdown["generated"]] == ["c2pa_ai_declared"]
    assert result.breakdown["decisive"][0]["code"] == "ai_declared_untrusted"
