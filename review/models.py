"""Human review: moderators, review items with their assignments and decisions, and the escalation policy."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from django.conf import settings
from django.db import models
from django.utils import timezone

from analysis.models import Analysis
from media.models import MediaItem


class Seniority(models.TextChoices):
    JUNIOR = "junior", "Junior"
    SENIOR = "senior", "Senior"
    LEAD = "lead", "Lead"


DEFAULT_CAPACITY = {Seniority.JUNIOR: 3, Seniority.SENIOR: 5, Seniority.LEAD: 7}

# Expertise tags a review item can require; a profile rates each 1 (novice) .. 5 (expert).
EXPERTISE_TAGS = ("image", "video", "audio_voice", "face_manipulation", "provenance", "generated")


class ModeratorProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderator_profile")
    seniority = models.CharField(max_length=8, choices=Seniority.choices, default=Seniority.JUNIOR)
    expertise = models.JSONField(default=dict, blank=True, help_text='{"image": 4, "face_manipulation": 2, ...}')
    max_concurrent = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: the seniority default (junior 3, senior 5, lead 7)."
    )
    is_active = models.BooleanField(default=True)
    work_start = models.TimeField(null=True, blank=True, help_text="Empty start/end: available around the clock.")
    work_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_concurrent__isnull=True) | models.Q(max_concurrent__gte=1),
                name="moderator_capacity_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.seniority})"

    @property
    def capacity(self) -> int:
        return int(self.max_concurrent or DEFAULT_CAPACITY[Seniority(self.seniority)])

    def is_on_shift(self, now: dt.datetime | None = None) -> bool:
        """Active and inside working hours (in the moderator's own time zone; shifts may cross midnight)."""
        if not self.is_active:
            return False
        if self.work_start is None or self.work_end is None:
            return True
        try:
            zone = zoneinfo.ZoneInfo(self.time_zone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        local = (now or timezone.now()).astimezone(zone).time()
        if self.work_start <= self.work_end:
            return self.work_start <= local < self.work_end
        return local >= self.work_start or local < self.work_end


class EscalationPolicy(models.Model):
    """The knobs of escalation, priority, SLA and leases. Exactly one is active; edited in admin."""

    name = models.CharField(max_length=100, default="default")
    is_active = models.BooleanField(default=False)
    trust_threshold = models.PositiveSmallIntegerField(default=70, help_text="Trust score below this: review.")
    probability_threshold = models.FloatField(default=0.6, help_text="Manipulation probability above this: review.")
    conflict_strength = models.FloatField(
        default=3.0,
        help_text="Two reviewers when weighted evidence (log-odds) for manipulation and for authenticity both "
        "reach this (docs/review.md).",
    )
    qa_sample_rate = models.FloatField(default=0.02, help_text="Share of auto-decided items sampled for QA review.")
    critical_probability = models.FloatField(default=0.9)
    high_probability = models.FloatField(default=0.75)
    sla_critical_hours = models.FloatField(default=2)
    sla_high_hours = models.FloatField(default=4)
    sla_medium_hours = models.FloatField(default=8)
    sla_low_hours = models.FloatField(default=24)
    lease_minutes = models.PositiveSmallIntegerField(default=30)
    inconsistency_trust_gap = models.PositiveSmallIntegerField(
        default=30, help_text="Flag for lead QA when human and machine differ by more trust points than this..."
    )
    inconsistency_machine_confidence = models.FloatField(default=0.8, help_text="...and machine confidence is above.")
    auto_assign = models.BooleanField(default=True, help_text="Push work to moderators with the batch assignment.")
    gold_rate = models.FloatField(
        default=0.05, help_text="Share of 'next item' claims that hand out a gold item as a probe (0 turns it off)."
    )
    gold_accuracy_threshold = models.FloatField(
        default=0.8, help_text="Flag a moderator to leads when their recent gold accuracy is below this..."
    )
    gold_min_probes = models.PositiveSmallIntegerField(
        default=5, help_text="...over at least this many decided probes in the recent window."
    )
    gold_window_days = models.PositiveSmallIntegerField(default=28, help_text="The recent window for gold accuracy.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_escalation_policy"
            ),
            models.CheckConstraint(
                condition=models.Q(probability_threshold__gte=0, probability_threshold__lte=1)
                & models.Q(qa_sample_rate__gte=0, qa_sample_rate__lte=1)
                & models.Q(gold_rate__gte=0, gold_rate__lte=1)
                & models.Q(gold_accuracy_threshold__gte=0, gold_accuracy_threshold__lte=1)
                & models.Q(trust_threshold__lte=100),
                name="escalation_policy_ranges",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (active)' if self.is_active else ''}"

    def sla_hours(self, priority: str) -> float:
        return float(getattr(self, f"sla_{priority}_hours"))


class Priority(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # at least one reviewer slot open
    ASSIGNED = "assigned", "Assigned"  # every slot held or decided, awaiting decisions
    DECIDED = "decided", "Decided"
    ESCALATED = "escalated", "Escalated to a lead"  # reviewers disagreed or a reviewer escalated
    EXPIRED = "expired", "Expired"  # superseded by a newer analysis of the same media before a decision
    CANCELLED = "cancelled", "Cancelled"  # the media was deleted


OPEN_STATUSES = (ItemStatus.PENDING, ItemStatus.ASSIGNED, ItemStatus.ESCALATED)


class HumanVerdict(models.TextChoices):
    AUTHENTIC = "authentic", "Authentic"
    MANIPULATED = "manipulated", "Manipulated"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class ReviewItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # One ordinary item per analysis (constraint below); gold probes are extra items on an already decided analysis.
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="review_items")
    media = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="review_items")
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    priority_rank = models.PositiveSmallIntegerField(default=2)  # 0 critical .. 3 low: sortable in SQL
    reasons = models.JSONField(default=list)  # [{"code", "text"}]: why it is here
    required_expertise = models.JSONField(default=list)
    reviewers_required = models.PositiveSmallIntegerField(default=1)
    open_slots = models.PositiveSmallIntegerField(default=1)  # reviewer slots nobody holds or has decided
    due_at = models.DateTimeField()
    # Machine outcome as it was when the item was created (the analysis keeps the full record).
    kind = models.CharField(max_length=8, blank=True)
    machine_trust_score = models.PositiveSmallIntegerField(null=True, blank=True)
    machine_probability = models.FloatField(null=True, blank=True)
    machine_confidence = models.FloatField(null=True, blank=True)
    machine_verdict = models.CharField(max_length=32, blank=True)
    client_urgent = models.BooleanField(default=False)
    qa_sample = models.BooleanField(default=False)
    disagreement = models.BooleanField(default=False)  # reviewers disagreed (or detectors did, see reasons)
    inconsistency = models.BooleanField(default=False)  # human far from a confident machine: lead QA
    # A copy of a gold item handed to one moderator to check them (GoldProbe). Never in queues, never published.
    is_gold_probe = models.BooleanField(default=False)
    escalation_note = models.TextField(blank=True)
    final_verdict = models.CharField(max_length=12, choices=HumanVerdict.choices, blank=True)
    final_confidence = models.FloatField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority_rank", "due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["analysis"], condition=models.Q(is_gold_probe=False), name="one_review_item_per_analysis"
            ),
            models.CheckConstraint(condition=models.Q(reviewers_required__in=[1, 2]), name="review_one_or_two"),
            models.CheckConstraint(
                condition=models.Q(open_slots__lte=models.F("reviewers_required")), name="review_slots_bounded"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "priority_rank", "due_at"], name="review_queue_order"),
            models.Index(fields=["status", "due_at"], name="review_due"),
        ]

    def __str__(self) -> str:
        return f"review {self.id} ({self.priority}, {self.status})"

    @property
    def is_overdue(self) -> bool:
        return self.status in OPEN_STATUSES and self.due_at < timezone.now()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def lead_only(self) -> bool:
        """Escalated items (reviewers disagreed, or one escalated) go to leads (assignment.seniority_refusal)."""
        return self.status == ItemStatus.ESCALATED


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"  # the moderator decided
    RELEASED = "released", "Released"  # handed back by the moderator, or ended by an escalation
    EXPIRED = "expired", "Lease expired"
    REASSIGNED = "reassigned", "Reassigned by a lead"


class AssignmentSource(models.TextChoices):
    AUTO = "auto", "Batch assignment"
    PULL = "pull", "Claimed by the moderator"
    LEAD = "lead", "Assigned by a lead"


class ReviewAssignment(models.Model):
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="assignments")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments")
    status = models.CharField(max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE)
    source = models.CharField(max_length=4, choices=AssignmentSource.choices)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)  # first time the moderator looked at it
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Never the same person twice on one item at the same time.
            models.UniqueConstraint(
                fields=["item", "moderator"], condition=models.Q(status="active"), name="one_active_assignment_per_pair"
            )
        ]
        indexes = [
            models.Index(fields=["moderator", "status"], name="assignment_by_moderator"),
            models.Index(fields=["status", "lease_expires_at"], name="assignment_leases"),
        ]

    def __str__(self) -> str:
        return f"{self.moderator_id} on {self.item_id} ({self.status})"


class ReviewDecision(models.Model):
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="decisions")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions")
    verdict = models.CharField(max_length=12, choices=HumanVerdict.choices)
    confidence = models.FloatField()
    notes = models.TextField(blank=True)
    overrides_machine = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["item", "moderator"], name="one_decision_per_moderator"),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="decision_confidence_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.moderator_id}: {self.verdict} on {self.item_id}"


class GoldItem(models.Model):
    """A decided review item a lead vouches for, with the verdict accepted as right (which may differ from the
    final verdict, e.g. after later evidence; the media's verdict is not changed by marking)."""

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="gold")
    verdict = models.CharField(max_length=12, choices=HumanVerdict.choices)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField(default=True, help_text="Inactive gold items are no longer handed out.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"gold {self.item_id}: {self.verdict}"


class GoldProbe(models.Model):
    """One hand-out of a gold item to one moderator, as an ordinary-looking review item (`probe_item`)."""

    gold = models.ForeignKey(GoldItem, on_delete=models.CASCADE, related_name="probes")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gold_probes")
    probe_item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="gold_probe")
    verdict = models.CharField(max_length=12, choices=HumanVerdict.choices, blank=True)
    correct = models.BooleanField(null=True, blank=True)  # empty until the moderator decides
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Never the same gold item twice to one person.
            models.UniqueConstraint(fields=["gold", "moderator"], name="one_probe_per_gold_and_moderator")
        ]

    def __str__(self) -> str:
        return f"probe of {self.gold_id} for {self.moderator_id}"
