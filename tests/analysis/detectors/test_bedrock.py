"""Bedrock detector against botocore's Stubber on the real Converse request/response shapes. No AWS is called:
every client here is stubbed, and the factory the detector would use for a real client refuses."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from analysis import selectors, services
from analysis.detectors import bedrock
from analysis.detectors.base import DetectorContext, MediaInput
from analysis.detectors.bedrock import BedrockDetector, ModelSpec

CLAUDE = ModelSpec("anthropic.claude-3-5-sonnet-20240620-v1:0", weight=2.0, input_per_1k=0.003, output_per_1k=0.015)
NOVA = ModelSpec("amazon.nova-pro-v1:0", weight=1.0, input_per_1k=0.0008, output_per_1k=0.0032)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("a test tried to build a real Bedrock client")

    monkeypatch.setattr(bedrock, "make_client", refuse)


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _jpeg(path: Path, side: int = 96) -> MediaInput:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 40, 200)).save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return MediaInput(path=path, kind="image", mime="image/jpeg", size=path.stat().st_size)


def _answer(
    probability: Any = 0.8, techniques: Any = None, rationale: Any = "Lighting on the face does not match."
) -> str:
    return json.dumps(
        {"manipulation_probability": probability, "techniques": techniques or ["face_swap"], "rationale": rationale}
    )


def _response(text: str, tokens_in: int = 1500, tokens_out: int = 80) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out},
        "metrics": {"latencyMs": 850},
    }


def _request(model: ModelSpec, image: bytes, *, retry_after: str | None = None) -> dict[str, Any]:
    """The exact request a model receives."""
    first = {
        "role": "user",
        "content": [{"image": {"format": "jpeg", "source": {"bytes": image}}}, {"text": bedrock.USER_PROMPT}],
    }
    messages = [first]
    if retry_after is not None:
        messages += [
            {"role": "assistant", "content": [{"text": retry_after}]},
            {"role": "user", "content": [{"text": bedrock.RETRY_PROMPT}]},
        ]
    return {
        "modelId": model.model_id,
        "system": [{"text": bedrock.SYSTEM_PROMPT}],
        "messages": messages,
        "inferenceConfig": {"maxTokens": 400, "temperature": 0.0},
    }


def _detector(client: Any, models: list[ModelSpec], slept: list[float] | None = None, **kwargs: Any) -> BedrockDetector:
    return BedrockDetector(
        models=models,
        client=client,
        daily_budget_usd=kwargs.pop("daily_budget_usd", 10.0),
        ensemble_size=kwargs.pop("ensemble_size", 0),
        sleep=(slept if slept is not None else []).append,
        rng=random.Random(7),
        **kwargs,
    )


def test_every_model_answers_and_the_ensemble_is_their_weighted_mean(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response(_answer(0.9)), _request(CLAUDE, media.data))
    stub.add_response("converse", _response(_answer(0.3, techniques=[]), 1000, 50), _request(NOVA, media.data))
    output = _detector(client, [CLAUDE, NOVA]).run(media, DetectorContext())
    assert output.status == "ok"
    assert output.probability == pytest.approx((2 * 0.9 + 1 * 0.3) / 3)
    assert [a["model_id"] for a in output.evidence["answers"]] == [CLAUDE.model_id, NOVA.model_id]
    calls = output.evidence["calls"]
    assert [(c["outcome"], c["input_tokens"], c["output_tokens"]) for c in calls] == [
        ("ok", 1500, 80),
        ("ok", 1000, 50),
    ]
    assert calls[0]["cost_usd"] == pytest.approx(1.5 * 0.003 + 0.08 * 0.015)
    assert output.evidence["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls), abs=1e-6)
    assert output.reasons[0].code == "bedrock_suspicious"


def test_ensemble_size_one_is_first_answer_wins(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response(_answer(0.2)), _request(CLAUDE, media.data))
    output = _detector(client, [CLAUDE, NOVA], ensemble_size=1).run(media, DetectorContext())
    assert output.probability == pytest.approx(0.2)
    assert len(output.evidence["calls"]) == 1


def test_a_malformed_answer_is_asked_again_once(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    chatty = "Sure! The image looks edited. Probability: 0.7"
    stub.add_response("converse", _response(chatty), _request(CLAUDE, media.data))
    stub.add_response("converse", _response(_answer(0.7)), _request(CLAUDE, media.data, retry_after=chatty))
    output = _detector(client, [CLAUDE]).run(media, DetectorContext())
    assert output.status == "ok" and output.probability == pytest.approx(0.7)
    assert [c["outcome"] for c in output.evidence["calls"]] == ["malformed", "ok"]


def test_a_model_malformed_twice_abstains_and_the_next_model_is_asked(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response("not json"), _request(CLAUDE, media.data))
    stub.add_response("converse", _response("{still not"), _request(CLAUDE, media.data, retry_after="not json"))
    stub.add_response("converse", _response(_answer(0.4)), _request(NOVA, media.data))
    output = _detector(client, [CLAUDE, NOVA]).run(media, DetectorContext())
    assert output.status == "ok" and output.probability == pytest.approx(0.4)
    assert output.evidence["failures"] == [{"model_id": CLAUDE.model_id, "reason": "malformed_answer"}]


def test_throttling_backs_off_then_succeeds(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_client_error(
        "converse", "ThrottlingException", "Too many requests", 429, expected_params=_request(CLAUDE, media.data)
    )
    stub.add_client_error(
        "converse", "ServiceUnavailableException", "busy", 503, expected_params=_request(CLAUDE, media.data)
    )
    stub.add_response("converse", _response(_answer(0.6)), _request(CLAUDE, media.data))
    slept: list[float] = []
    output = _detector(client, [CLAUDE], slept).run(media, DetectorContext())
    assert output.status == "ok"
    assert len(slept) == 2 and 0 <= slept[0] <= 0.5 and 0 <= slept[1] <= 1.0  # full jitter under 0.5 s, 1 s caps
    assert [c["outcome"] for c in output.evidence["calls"]] == [
        "ThrottlingException",
        "ServiceUnavailableException",
        "ok",
    ]


def test_throttling_that_persists_falls_back_after_bounded_attempts(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    for _ in range(4):
        stub.add_client_error(
            "converse", "ThrottlingException", "slow down", 429, expected_params=_request(CLAUDE, media.data)
        )
    stub.add_response("converse", _response(_answer(0.1)), _request(NOVA, media.data))
    slept: list[float] = []
    output = _detector(client, [CLAUDE, NOVA], slept).run(media, DetectorContext())
    assert output.status == "ok" and output.probability == pytest.approx(0.1)
    assert len(slept) == 3
    assert output.evidence["failures"] == [{"model_id": CLAUDE.model_id, "reason": "ThrottlingException"}]


def test_access_denied_falls_back_to_the_next_model_at_once(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_client_error(
        "converse",
        "AccessDeniedException",
        "You don't have access to the model",
        403,
        expected_params=_request(CLAUDE, media.data),
    )
    stub.add_response("converse", _response(_answer(0.35)), _request(NOVA, media.data))
    slept: list[float] = []
    output = _detector(client, [CLAUDE, NOVA], slept).run(media, DetectorContext())
    assert output.status == "ok" and output.probability == pytest.approx(0.35)
    assert slept == []
    assert output.evidence["answers"][0]["model_id"] == NOVA.model_id


def test_a_read_timeout_falls_back(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response(_answer(0.5)), _request(NOVA, media.data))

    class TimesOutForClaude:
        def converse(self, **params: Any) -> Any:
            if params["modelId"] == CLAUDE.model_id:
                raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
            return client.converse(**params)

    output = _detector(TimesOutForClaude(), [CLAUDE, NOVA]).run(media, DetectorContext())
    assert output.status == "ok"
    assert output.evidence["failures"] == [{"model_id": CLAUDE.model_id, "reason": "ReadTimeoutError"}]


def test_when_every_model_fails_it_abstains_upstream_failed(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_client_error(
        "converse", "ValidationException", "bad input", 400, expected_params=_request(CLAUDE, media.data)
    )
    stub.add_client_error("converse", "ModelTimeoutException", "slow", 408, expected_params=_request(NOVA, media.data))
    output = _detector(client, [CLAUDE, NOVA]).run(media, DetectorContext())
    assert output.status == "abstained" and output.probability is None
    assert output.abstain_code == "upstream_failed"
    assert [f["reason"] for f in output.evidence["failures"]] == ["ValidationException", "ModelTimeoutException"]


def test_a_spent_budget_abstains_without_calling(stubbed: Any, tmp_path: Path) -> None:
    client, _stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    output = _detector(client, [CLAUDE], daily_budget_usd=5.0).run(
        media, DetectorContext(options={"bedrock_spent_today_usd": 5.0})
    )
    assert output.status == "abstained" and output.abstain_code == "budget_exhausted"
    assert output.evidence["calls"] == []


def test_the_budget_running_out_mid_ensemble_stops_further_calls(stubbed: Any, tmp_path: Path) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response(_answer(0.9), 100_000, 1000), _request(CLAUDE, media.data))
    output = _detector(client, [CLAUDE, NOVA], daily_budget_usd=1.0).run(
        media, DetectorContext(options={"bedrock_spent_today_usd": 0.75})
    )
    assert output.status == "ok" and len(output.evidence["calls"]) == 1  # 0.75 + 0.315 >= 1.0: Nova not asked


@pytest.mark.parametrize(
    "reply",
    [
        _answer(1.7),
        _answer(-0.1),
        _answer("0.5"),
        _answer(True),
        '{"manipulation_probability": NaN, "techniques": [], "rationale": ""}',
        _answer(0.5, rationale="x" * 100_000),
        _answer(0.5, techniques="face_swap"),
        _answer(0.5, techniques=[1, 2]),
        json.dumps({"manipulation_probability": 0.5, "techniques": [], "rationale": "", "extra": 1}),
        "[0.5]",
        "",
    ],
)
def test_answers_outside_the_schema_make_the_model_abstain_never_crash(
    stubbed: Any, tmp_path: Path, reply: str
) -> None:
    client, stub = stubbed
    media = _jpeg(tmp_path / "x.jpg")
    stub.add_response("converse", _response(reply), _request(CLAUDE, media.data))
    stub.add_response("converse", _response(reply), None)
    output = _detector(client, [CLAUDE]).run(media, DetectorContext())
    assert output.status == "abstained" and output.abstain_code == "upstream_failed"
    assert [c["outcome"] for c in output.evidence["calls"]] == ["malformed", "malformed"]


def test_a_fenced_json_answer_is_accepted() -> None:
    assert bedrock.validate_answer("```json\n" + _answer(0.25) + "\n```")["manipulation_probability"] == 0.25


def test_it_abstains_not_configured_without_models(tmp_path: Path) -> None:
    output = BedrockDetector(models=[], client=object()).applies(_jpeg(tmp_path / "x.jpg"))
    assert output is not None and output.abstain_code == "not_configured"


def test_audio_is_not_for_bedrock(tmp_path: Path) -> None:
    media = MediaInput(path=tmp_path / "a.wav", kind="audio", mime="audio/wav", size=10)
    output = BedrockDetector(models=[CLAUDE], client=object()).applies(media)
    assert output is not None and output.abstain_code == "unsupported_kind"


def test_model_configuration_is_parsed_and_checked() -> None:
    raw = json.dumps([{"model_id": CLAUDE.model_id, "weight": 2, "input_per_1k": 0.003, "output_per_1k": 0.015}])
    assert bedrock.parse_models(raw) == [CLAUDE]
    assert bedrock.parse_models("") == []
    for bad in (
        "claude",
        "{}",
        '[{"weight": 1}]',
        '[{"model_id": "m", "weight": 0}]',
        '[{"model_id": "m", "wieght": 1}]',
    ):
        with pytest.raises(ImproperlyConfigured):
            bedrock.parse_models(bad)


def test_large_images_are_resized_and_reencoded_within_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.effect_noise((4000, 300), 60).convert("RGB").save(path, "PNG")
    media = MediaInput(path=path, kind="image", mime="image/png", size=path.stat().st_size)
    fmt, data = bedrock.prepare_image(media)
    assert fmt == "jpeg" and len(data) <= bedrock.MAX_IMAGE_BYTES
    assert max(Image.open(io.BytesIO(data)).size) <= bedrock.DEFAULT_SIDE_PX
    small = _jpeg(tmp_path / "small.jpg")
    assert bedrock.prepare_image(small) == ("jpeg", small.data)  # acceptable as is: sent untouched


def test_oversized_bytes_are_squeezed_under_3_75_mb() -> None:
    image = Image.effect_noise((7000, 7000), 120).convert("RGB")
    fmt, data = bedrock.encode_for_converse(image, max_side=8000)
    assert fmt == "jpeg" and len(data) <= bedrock.MAX_IMAGE_BYTES


def test_a_video_is_sent_as_a_few_keyframes(stubbed: Any, tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.gop_size = 5
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 6, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    media = MediaInput(path=path, kind="video", mime="video/mp4", size=path.stat().st_size)
    client, stub = stubbed
    stub.add_response("converse", _response(_answer(0.3)), None)
    seen: list[dict[str, Any]] = []

    class Recording:
        def converse(self, **params: Any) -> Any:
            seen.append(params)
            return client.converse(**params)

    output = _detector(Recording(), [CLAUDE]).run(media, DetectorContext())
    assert output.status == "ok"
    images = [block for block in seen[0]["messages"][0]["content"] if "image" in block]
    assert 2 <= len(images) <= bedrock.VIDEO_KEYFRAMES
    assert output.evidence["images_sent"] == len(images)


# --- the pipeline hook: the Bedrock step on its own queue, usage recorded, analysis completed -------------------
@pytest.fixture
def stored_media(db: Any) -> Any:
    """stored_media(owner) -> a stored MediaItem (a small JPEG) whose bytes are in storage."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from media.models import MediaItem
    from media.storage import original_key

    def make(owner: Any) -> Any:
        buffer = io.BytesIO()
        Image.effect_noise((128, 128), 40).convert("RGB").save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        item = MediaItem.objects.create(
            owner=owner, kind="image", mime_type="image/jpeg", size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), original_filename="sample.jpg", status="stored",
        )  # fmt: skip
        item.storage_key = default_storage.save(original_key(item), ContentFile(data))
        item.save(update_fields=["storage_key"])
        return item

    return make


@pytest.fixture
def bedrock_configured(settings: Any, monkeypatch: pytest.MonkeyPatch, stubbed: Any) -> Any:
    from analysis.detectors import registry
    from analysis.detectors.metadata import MetadataDetector

    settings.HLEKKR_BEDROCK_MODELS = json.dumps(
        [
            {
                "model_id": NOVA.model_id,
                "weight": 1,
                "input_per_1k": NOVA.input_per_1k,
                "output_per_1k": NOVA.output_per_1k,
            }
        ]
    )
    settings.HLEKKR_BEDROCK_DAILY_BUDGET_USD = 1.0
    client, stub = stubbed
    monkeypatch.setattr(bedrock, "make_client", lambda *args: client)
    monkeypatch.setattr(registry, "detectors", lambda *args, **kwargs: [MetadataDetector()])  # one fast detector
    return stub


def _run_local_step(
    stored_media: Any, owner: Any, monkeypatch: pytest.MonkeyPatch, capture: Any
) -> tuple[Any, list[Any]]:
    from analysis.tasks import analysis_step_task

    sent: list[Any] = []
    monkeypatch.setattr(analysis_step_task, "apply_async", lambda args, queue: sent.append((args, queue)))
    analysis = services.analysis_create(media=stored_media(owner))
    with capture(execute=True):
        after_local = services.analysis_run(analysis_id=analysis.pk)
    return after_local, sent


def test_the_analysis_waits_for_the_bedrock_queue_then_completes_with_its_answer(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from analysis.models import BedrockCall, DetectorResult, ScoringPolicy

    # Bedrock counts once the active policy gives it a weight (docs/bedrock.md); the shipped v1 does not.
    policy = ScoringPolicy.objects.get(is_active=True)
    ScoringPolicy.objects.filter(pk=policy.pk).update(weights={**policy.weights, "bedrock": 0.8})
    bedrock_configured.add_response("converse", _response(_answer(0.9), 2000, 100), None)
    analysis, sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    assert analysis.status == "running"  # local detectors done, scoring waits for Bedrock
    assert sent == [([str(analysis.pk), "bedrock"], "bedrock")]
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed"
    assert [c["detector"] for c in done.breakdown["contributions"]] == ["bedrock"]
    assert done.trust_score is not None and done.trust_score < 40  # p = 0.9 from the only scoring detector
    row = DetectorResult.objects.get(analysis=analysis, detector="bedrock")
    assert (row.status, row.score) == ("ok", pytest.approx(0.9))
    call = BedrockCall.objects.get()
    assert (call.analysis_id, call.model_id, call.outcome, call.input_tokens, call.output_tokens) == (
        analysis.pk,
        NOVA.model_id,
        "ok",
        2000,
        100,
    )
    assert float(call.cost_usd) == pytest.approx(2 * 0.0008 + 0.1 * 0.0032)
    assert selectors.bedrock_spent_today_usd() == pytest.approx(float(call.cost_usd))
    assert "bedrock_ms" in done.timings
    # Idempotent: a duplicate message finds the analysis completed and calls nothing.
    assert services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock") is None
    assert BedrockCall.objects.count() == 1


def test_when_bedrock_fails_the_analysis_still_completes_on_local_evidence(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from analysis.models import BedrockCall, DetectorResult

    bedrock_configured.add_client_error("converse", "AccessDeniedException", "no access", 403)
    analysis, _sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed"
    row = DetectorResult.objects.get(analysis=analysis, detector="bedrock")
    assert row.status == "abstained" and row.reasons[0]["code"] == "upstream_failed"
    assert BedrockCall.objects.get().outcome == "AccessDeniedException"


def test_a_spent_daily_budget_skips_bedrock_with_budget_exhausted(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import uuid

    from analysis.models import DetectorResult

    services.bedrock_calls_record(
        analysis=None,
        evidence={"run_id": str(uuid.uuid4()), "calls": [{"model_id": "m", "outcome": "ok", "cost_usd": 1.0}]},
    )
    analysis, _sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed"
    row = DetectorResult.objects.get(analysis=analysis, detector="bedrock")
    assert row.reasons[0]["code"] == "budget_exhausted"


def test_without_models_the_local_pipeline_scores_at_once(
    settings: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from analysis.detectors import registry
    from analysis.detectors.metadata import MetadataDetector

    settings.HLEKKR_BEDROCK_MODELS = ""
    monkeypatch.setattr(registry, "detectors", lambda *args, **kwargs: [MetadataDetector()])
    analysis, sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    assert analysis.status == "completed" and sent == []


def test_admin_shows_calls_and_todays_spend_against_the_budget(admin_user: Any, client: Any, settings: Any) -> None:
    import uuid

    settings.HLEKKR_BEDROCK_DAILY_BUDGET_USD = 2.0
    services.bedrock_calls_record(
        analysis=None,
        evidence={
            "run_id": str(uuid.uuid4()),
            "calls": [{"model_id": NOVA.model_id, "outcome": "ok", "cost_usd": 0.5}],
        },
    )
    client.force_login(admin_user)
    page = client.get("/admin/analysis/bedrockcall/", follow=True)
    assert page.status_code == 200
    assert b"$0.5000 of the $2.00 daily budget" in page.content


def test_a_broker_failure_sending_the_bedrock_step_leaves_the_analysis_running_for_the_reconciler(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from analysis.models import DetectorResult
    from analysis.tasks import analysis_step_task

    def broker_down(args: Any, queue: str) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(analysis_step_task, "apply_async", broker_down)
    analysis = services.analysis_create(media=stored_media(client_a))
    with django_capture_on_commit_callbacks(execute=True):
        after_local = services.analysis_run(analysis_id=analysis.pk)
    assert after_local is not None
    after_local.refresh_from_db()
    assert after_local.status == "running" and after_local.failure_reason == ""
    assert DetectorResult.objects.filter(analysis=analysis, detector="metadata").exists()


# --- the Bedrock step's own claim ---------------------------------------------------------------------------------
def test_a_step_resent_while_its_first_message_still_waits_calls_bedrock_once(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from analysis.models import Analysis, BedrockCall

    bedrock_configured.add_response("converse", _response(_answer(0.4), 1000, 50), None)  # one answer only
    analysis, sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    # The bedrock queue is backed up: after a while the reconciler sends the step again.
    Analysis.objects.filter(pk=analysis.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.analysis_reconcile()["steps_resent"] == 1
    assert sent == [([str(analysis.pk), "bedrock"], "bedrock")] * 2
    # Both messages are delivered: the first claims the step and completes; the second finds nothing to do.
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed"
    assert services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock") is None
    assert BedrockCall.objects.count() == 1


def test_a_second_message_while_a_live_worker_calls_bedrock_does_nothing(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from analysis.models import Analysis, BedrockCall

    analysis, _sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    holder = {"lease_token": uuid.uuid4(), "lease_expires_at": timezone.now() + timedelta(seconds=20)}
    Analysis.objects.filter(pk=analysis.pk).update(**holder)  # a worker is calling Bedrock right now
    assert services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock") is None
    assert BedrockCall.objects.count() == 0  # the stub has no response queued: any call would have failed


def test_a_bedrock_worker_killed_mid_call_is_retaken_once_its_lease_lapses(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from analysis.models import Analysis

    bedrock_configured.add_response("converse", _response(_answer(0.7), 1000, 50), None)
    analysis, sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    dead = {"lease_token": uuid.uuid4(), "lease_expires_at": timezone.now() - timedelta(seconds=1)}
    Analysis.objects.filter(pk=analysis.pk).update(step_attempts=1, **dead)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.analysis_reconcile() == {"requeued": 0, "failed": 0, "resent": 0, "steps_resent": 1}
    assert len(sent) == 2
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed" and done.step_attempts == 2


def test_a_step_interrupted_too_often_is_skipped_and_the_analysis_scored_on_local_evidence(
    bedrock_configured: Any,
    stored_media: Any,
    client_a: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from analysis.models import Analysis, BedrockCall, DetectorResult

    analysis, _sent = _run_local_step(stored_media, client_a, monkeypatch, django_capture_on_commit_callbacks)
    Analysis.objects.filter(pk=analysis.pk).update(step_attempts=3)  # three workers died calling Bedrock
    done = services.analysis_step_run(analysis_id=analysis.pk, step_name="bedrock")
    assert done is not None and done.status == "completed" and done.verdict  # metadata alone: inconclusive
    assert not DetectorResult.objects.filter(analysis=analysis, detector="bedrock").exists()
    assert BedrockCall.objects.count() == 0
