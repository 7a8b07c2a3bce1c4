"""Bedrock fallback under throttling: how many analyses still get a Bedrock answer, what backoff adds, how many
calls each analysis makes.

The real BedrockDetector runs against a stubbed bedrock-runtime client (no AWS) that answers a valid JSON verdict
but raises botocore's ThrottlingException on a given share of calls, independently per call. Time is SIMULATED:
the detector's sleep advances a virtual clock instead of waiting, and each call is charged a fixed simulated model
latency, so the figures are the backoff schedule's, not this machine's. Baseline: 0 % throttling, same run.

    python bench/bedrock_fallback.py [--analyses 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")

import django

django.setup()

from botocore.exceptions import ClientError  # noqa: E402
from PIL import Image  # noqa: E402

from analysis.detectors.base import DetectorContext, MediaInput  # noqa: E402
from analysis.detectors.bedrock import BedrockDetector, ModelSpec  # noqa: E402

MODELS = [
    ModelSpec("anthropic.claude-3-5-sonnet-20240620-v1:0", weight=2, input_per_1k=0.003, output_per_1k=0.015),
    ModelSpec("amazon.nova-pro-v1:0", weight=1, input_per_1k=0.0008, output_per_1k=0.0032),
]
CALL_LATENCY_S = 0.8  # simulated time a model takes to answer (or to refuse)
SHARES = (0.0, 0.1, 0.3, 0.5)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds

    def __call__(self) -> float:
        return self.now


class ThrottlingClient:
    """Converse stand-in: the real response shape, or a real ClientError(ThrottlingException) with probability p."""

    def __init__(self, share: float, rng: random.Random, clock: VirtualClock):
        self.share, self.rng, self.clock, self.calls = share, rng, clock, 0

    def converse(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        self.clock.now += CALL_LATENCY_S
        if self.rng.random() < self.share:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Too many requests"}, "ResponseMetadata": {}},
                "Converse",
            )
        answer = {"manipulation_probability": 0.3, "techniques": [], "rationale": "No visible inconsistencies."}
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": json.dumps(answer)}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 1500, "outputTokens": 60, "totalTokens": 1560},
            "metrics": {"latencyMs": int(CALL_LATENCY_S * 1000)},
        }


def run(share: float, analyses: int, ensemble: int, seed: int, media: MediaInput) -> dict[str, float]:
    rng = random.Random(seed)
    completed = calls = 0
    added = 0.0
    for _ in range(analyses):
        clock = VirtualClock()
        client = ThrottlingClient(share, rng, clock)
        detector = BedrockDetector(
            models=MODELS,
            client=client,
            daily_budget_usd=1e9,
            ensemble_size=ensemble,
            sleep=clock.sleep,
            rng=rng,
            clock=clock,
        )
        output = detector.run(media, DetectorContext())
        completed += output.status == "ok"
        calls += client.calls
        added += clock.slept
    return {"completed": completed / analyses, "backoff_s": added / analyses, "calls": calls / analyses}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--analyses", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "item.jpg"
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), (90, 120, 150)).save(buffer, "JPEG", quality=90)
        path.write_bytes(buffer.getvalue())
        media = MediaInput(path=path, kind="image", mime="image/jpeg", size=path.stat().st_size)
        print(f"{args.analyses} analyses per row, 2 models, up to 4 attempts per model, simulated time")
        print(f"(model call {CALL_LATENCY_S} s, backoff uniform(0, min(8, 0.5*2^n)) s); ratios vs 0 % throttling\n")
        for ensemble, label in ((1, "fallback (first answer wins)"), (0, "ensemble (both models)")):
            print(label)
            print(
                f"{'throttled':>10} {'completed':>10} {'backoff s/analysis':>19} {'calls/analysis':>15} {'x baseline':>11}"
            )
            baseline = None
            for share in SHARES:
                figures = run(share, args.analyses, ensemble, args.seed, media)
                baseline = baseline or figures
                print(
                    f"{share:>9.0%} {figures['completed']:>10.1%} {figures['backoff_s']:>19.2f} "
                    f"{figures['calls']:>15.2f} {figures['calls'] / baseline['calls']:>10.2f}x"
                )
            print()


if __name__ == "__main__":
    main()
