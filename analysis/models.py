"""Analyses, per-detector results, scoring policies and PDQ hash banks."""

from __future__ import annotations

import math
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from analysis.scoring import DEFAULT_POLICY, default_decisive, default_weights
from media.models import MediaItem


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Verdict(models.TextChoices):
    LIKELY_AUTHENTIC = "likely_authentic", "Likely authentic"
    # Nothing was found and nothing positive is known: not proof of authenticity (docs/scoring.md).
    NO_MANIPULATION_FOUND = "no_manipulation_found", "No manipulation found"
    SUSPICIOUS = "suspicious", "Suspicious"
    LIKELY_MANIPULATED = "likely_manipulated", "Likely manipulated"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class AnalysisQueue(models.TextChoices):
    INTERACTIVE = "interactive", "Interactive (new uploads)"
    BATCH = "batch", "Batch (re-analyses)"


class ScoringPolicy(models.Model):
    """A versioned set of weights and thresholds. Exactly one is active; analyses record the one they used."""

    version = models.PositiveIntegerField(unique=True)
    is_active = models.BooleanField(default=False)
    # Defaults: scoring.DEFAULT_POLICY, so a policy added in admin starts from the numbers docs/scoring.md explains.
    bias = models.FloatField(default=DEFAULT_POLICY.bias)
    weights = models.JSONField(default=default_weights)  # detector name -> weight
    decisive = models.JSONField(default=default_decisive)  # decisive evidence code -> log-odds shift
    # probabilities are clipped to [clip, 1 - clip] before logit
    clip = models.FloatField(default=DEFAULT_POLICY.clip)
    # trust >= this: likely authentic (with positive evidence) or no manipulation found
    authentic_threshold = models.PositiveSmallIntegerField(default=DEFAULT_POLICY.authentic_threshold)
    # trust < this: likely manipulated
    manipulated_threshold = models.PositiveSmallIntegerField(default=DEFAULT_POLICY.manipulated_threshold)
    # Editing evidence alone (resize, re-save) can reach "suspicious" at worst, never "likely manipulated".
    edited_only_cap = models.BooleanField(default=DEFAULT_POLICY.edited_only_cap)
    # The most log-odds that detectors finding nothing may add towards "authentic" together (docs/scoring.md).
    clean_evidence_cap = models.FloatField(
        null=True,
        blank=True,
        default=DEFAULT_POLICY.clean_evidence_cap,
        help_text="Detectors that found nothing add at most this many log-odds (<= 0) together. Empty: uncapped.",
    )
    notes = models.TextField(blank=True)
    proposed_by_calibration = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "scoring policies"
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_policy"),
            models.CheckConstraint(
                condition=models.Q(manipulated_threshold__lt=models.F("authentic_threshold")),
                name="policy_bands_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"scoring policy v{self.version}{' (active)' if self.is_active else ''}"

    def clean(self) -> None:
        """Refuse, in admin, a policy the scorer cannot use: once active it would fail every analysis."""
        errors: dict[str, str] = {}
        for name in ("weights", "decisive"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(_is_finite_number(v) for v in value.values()):
                errors[name] = "A JSON object mapping names to finite numbers."
        if not _is_finite_number(self.clip) or not 0 < self.clip < 0.5:
            errors["clip"] = "Must be above 0 and below 0.5 (probabilities are clipped to [clip, 1 - clip])."
        if not _is_finite_number(self.bias):
            errors["bias"] = "Must be a finite number."
        cap = self.clean_evidence_cap
        if cap is not None and (not _is_finite_number(cap) or not -1000 < cap <= 0):
            errors["clean_evidence_cap"] = "A log-odds value at most 0 (or empty for no cap)."
        if errors:
            raise ValidationError(errors)


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Analysis(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    media = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="analyses")
    run_number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED)
    queue = models.CharField(max_length=12, choices=AnalysisQueue.choices, default=AnalysisQueue.INTERACTIVE)
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    manipulation_probability = models.FloatField(null=True, blank=True)
    trust_score = models.PositiveSmallIntegerField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=32, choices=Verdict.choices, blank=True)
    scoring_policy = models.ForeignKey(ScoringPolicy, null=True, blank=True, on_delete=models.PROTECT)
    breakdown = models.JSONField(default=dict)  # contributions, decisive evidence, reasons by category
    timings = models.JSONField(default=dict)  # milliseconds: download, per detector, scoring, total
    # When the task was last sent to the broker, and how often: the reconciler re-sends queued work whose
    # message may have been lost, backing off so a long backlog is not flooded with duplicates.
    # For a running analysis handed to a step on another queue, the same two fields describe that step's message.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveSmallIntegerField(default=0)
    # The claim of a running analysis (docs/analysis.md "Claims and leases"): the pipeline step it is in, the
    # token of the worker holding it, and when that claim lapses unless the worker renews it. No token while a
    # handed-off step waits for its worker; a lapsed lease means the holder died and the work may be taken over.
    step = models.CharField(max_length=16, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    step_attempts = models.PositiveSmallIntegerField(default=0)  # claims of the current handed-off step

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(fields=["media", "run_number"], name="analysis_unique_run"),
            models.CheckConstraint(
                condition=models.Q(trust_score__isnull=True) | models.Q(trust_score__lte=100), name="trust_in_range"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "started_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["media", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"analysis {self.id} of {self.media_id} #{self.run_number} ({self.status})"


class DetectorStatus(models.TextChoices):
    OK = "ok", "OK"
    ABSTAINED = "abstained", "Abstained"
    ERROR = "error", "Error"


class DetectorResult(models.Model):
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="detector_results")
    detector = models.CharField(max_length=32)
    detector_version = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=DetectorStatus.choices)
    score = models.FloatField(null=True, blank=True)  # probability of manipulation in [0, 1]
    reasons = models.JSONField(default=list)  # [{"code", "text", "category"}]
    evidence = models.JSONField(default=dict)
    decisive = models.JSONField(default=list)  # decisive evidence codes
    artifacts = models.JSONField(default=list)  # [{"name", "content_type", "storage_key"}]
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["detector"]
        constraints = [
            # Idempotent tasks: one result per analysis and detector, whatever retries happen.
            models.UniqueConstraint(fields=["analysis", "detector"], name="one_result_per_detector"),
        ]

    def __str__(self) -> str:
        return f"{self.detector} {self.status} {self.score}"


class BankKind(models.TextChoices):
    KNOWN_FAKE = "known_fake", "Known fake"
    KNOWN_AUTHENTIC = "known_authentic", "Known authentic"


class HashBank(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=BankKind.choices)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class BankedHash(models.Model):
    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="hashes")
    pdq_hash = models.CharField(max_length=64)  # 256-bit PDQ as hex
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "pdq_hash"], name="bank_unique_hash")]

    def __str__(self) -> str:
        return f"{self.pdq_hash[:12]}… in {self.bank_id}"


class BankedVideo(models.Model):
    """A known video's signature: one PDQ hash per second (analysis/detectors/video_signature.py)."""

    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="videos")
    label = models.CharField(max_length=200, blank=True)
    duration_seconds = models.FloatField(default=0)
    frame_count = models.PositiveIntegerField(default=0)
    frames = models.JSONField(default=list)  # [[seconds, pdq hex, quality], ...]
    signature_sha256 = models.CharField(max_length=64)  # of the frame list: the same signature is banked once
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "signature_sha256"], name="bank_unique_video_signature")]

    def __str__(self) -> str:
        return f"video {self.label or self.pk} ({self.frame_count} frames) in {self.bank_id}"


class BedrockCall(models.Model):
    """One Bedrock Converse call: tokens, cost, latency and outcome (ok, malformed, ThrottlingException, ...).

    Written from the bedrock detector's evidence by the Bedrock step (analysis/services.py); today's sum is the
    spend the daily budget (HLEKKR_BEDROCK_DAILY_BUDGET_USD) is checked against. Kept when its analysis is
    deleted: it is money.
    """

    analysis = models.ForeignKey(Analysis, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_id = models.UUIDField()  # one detector run; with `sequence` it makes recording idempotent
    sequence = models.PositiveSmallIntegerField()
    model_id = models.CharField(max_length=200)
    outcome = models.CharField(max_length=64)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["run_id", "sequence"], name="bedrock_call_once")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.outcome} ${self.cost_usd}"


class ScoringPolicyEvaluation(models.Model):
    """A shadow evaluation: the last N reviewed items scored with a policy and with the policy active at the
    time, side by side (analysis/shadow.py). Shown in admin beside the Activate action; never activates anything."""

    policy = models.ForeignKey(ScoringPolicy, on_delete=models.CASCADE, related_name="evaluations")
    baseline = models.ForeignKey(
        ScoringPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )  # the active policy it was compared with
    items = models.PositiveIntegerField()
    # {"proposed": Metrics.as_dict(), "active": Metrics.as_dict() or null, "labels": {"review": n, "qa": n, ...}}
    metrics = models.JSONField(default=dict)
    reliability_png = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"shadow evaluation of v{self.policy.version} on {self.items} items"
