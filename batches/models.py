"""Batches: up to 500 of a client's media items or URLs analysed as one job (docs/batches.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class BatchStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"  # every item is done or failed; batch.completed was published


class BatchItemState(models.TextChoices):
    WAITING = "waiting", "Waiting"  # not started: waits for a slot under the client's concurrency cap
    RUNNING = "running", "Running"  # fetching and/or being analysed
    DONE = "done", "Done"  # the analysis completed: the verdict is in
    FAILED = "failed", "Failed"  # the fetch was refused or the analysis failed: `error_code` says why


ITEM_OPEN_STATES = (BatchItemState.WAITING, BatchItemState.RUNNING)


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.RUNNING)
    total = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "status", "created_at"])]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.status}, {self.total} items)"


class BatchItem(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()  # the entry's index in the request
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    url = models.CharField(max_length=2048, blank=True)  # for URL entries
    # The item being analysed: the entry's media, or (URL entries) the stored item the fetch resolved to.
    media = models.ForeignKey("media.MediaItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # URL entries: the placeholder item of the fetch, until the fetch ends.
    fetch_media = models.ForeignKey(
        "media.MediaItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=8, choices=BatchItemState.choices, default=BatchItemState.WAITING)
    error_code = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="batch_item_unique_position")]
        indexes = [
            models.Index(fields=["owner", "state"]),
            models.Index(fields=["media", "state"]),
            models.Index(fields=["fetch_media", "state"]),
        ]

    def __str__(self) -> str:
        return f"batch item {self.batch_id}#{self.position} ({self.state})"
