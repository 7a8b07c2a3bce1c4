"""Media items, resumable multipart uploads and fetches from a URL."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class MediaKind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"


class MediaStatus(models.TextChoices):
    FETCHING = "fetching", "Fetching"  # created from a URL; the worker has not stored the bytes yet
    UPLOADING = "uploading", "Uploading"
    STORED = "stored", "Stored"
    REJECTED = "rejected", "Rejected"
    DELETED = "deleted", "Deleted"


class MediaItemQuerySet(models.QuerySet["MediaItem"]):
    """Every ORM write to items retires their cached detail bodies (media/detail_cache.py), so no writer, in
    this app or another, has to remember to: `update()` (and `bulk_update`, which uses it) and `delete()`."""

    def update(self, **kwargs: Any) -> int:
        from media import detail_cache

        changed = super().update(**kwargs)
        if changed:
            detail_cache.rows_changed(self)
        return changed

    def delete(self) -> tuple[int, dict[str, int]]:
        from media import detail_cache

        detail_cache.rows_changed(self)
        return super().delete()


class MediaItem(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="media_items")
    kind = models.CharField(max_length=8, choices=MediaKind.choices, blank=True)
    mime_type = models.CharField(max_length=100, blank=True)  # sniffed from the bytes, never the client's word
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)  # sanitised; never used as a storage key
    storage_key = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=MediaStatus.choices, default=MediaStatus.UPLOADING)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    # The latest outcome, written by the analysis and review apps through media services so that lists can
    # filter and sort without joining upward (media never imports analysis or review).
    analysis_status = models.CharField(max_length=12, blank=True)  # queued/running/completed/failed
    trust_score = models.PositiveSmallIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=32, blank=True)  # machine verdict of the latest analysis
    final_verdict = models.CharField(max_length=20, blank=True)  # the human verdict once review decides
    outcome_version = models.PositiveIntegerField(default=0)  # bumps on every change above: ETag and cache key
    review_requested = models.BooleanField(default=False)  # the client asked for a human look
    priority = models.CharField(max_length=8, default="normal")  # client urgency: normal | urgent
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MediaItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Re-uploading the same bytes returns the existing item; deleted items free their hash.
            models.UniqueConstraint(
                fields=["owner", "sha256"],
                condition=models.Q(status__in=["stored", "uploading"]) & ~models.Q(sha256=""),
                name="media_unique_live_owner_sha256",
            )
        ]
        indexes = [models.Index(fields=["owner", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind or 'media'} {self.id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        from media import detail_cache

        super().save(*args, **kwargs)
        if not kwargs.get("force_insert"):  # a new row has nothing cached yet
            detail_cache.item_changed(self.pk)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        from media import detail_cache

        detail_cache.item_changed(self.pk)
        return super().delete(*args, **kwargs)


class UploadState(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETING = "completing", "Completing"  # claimed by one complete call while storage finishes
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"
    FAILED = "failed", "Failed"


class MultipartUpload(models.Model):
    """One S3 multipart upload (or its filesystem twin in the embedded run) that will become `media`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    media = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="multipart_upload")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="multipart_uploads")
    s3_upload_id = models.CharField(max_length=1024, blank=True)
    declared_size = models.BigIntegerField()
    declared_content_type = models.CharField(max_length=100)
    part_size = models.BigIntegerField()
    part_count = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=UploadState.choices, default=UploadState.ACTIVE)
    failure_reason = models.CharField(max_length=255, blank=True)
    # When the completed bytes were already stored by the same owner, the upload resolves to that item.
    duplicate_of = models.ForeignKey(
        MediaItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=True
    )
    expires_at = models.DateTimeField()  # part URLs issued now stop working at this time
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.state})"


class FetchState(models.TextChoices):
    PENDING = "pending", "Pending"
    FETCHING = "fetching", "Fetching"
    STORED = "stored", "Stored"  # the bytes became the placeholder item
    DUPLICATE = "duplicate", "Duplicate"  # the owner already had these bytes: resolved to that item
    FAILED = "failed", "Failed"


FETCH_TERMINAL_STATES = (FetchState.STORED, FetchState.DUPLICATE, FetchState.FAILED)


class UrlFetch(models.Model):
    """`POST media/from-url/`: the placeholder item (status `fetching`) and the way to its bytes.

    The source URL, every hop and the URL the bytes finally came from stay recorded as evidence (shown on the
    item and in its evidence bundle), also when the fetch resolved to an item the owner already had."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="url_fetches")
    media = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="url_fetch")
    # The item the bytes are: `media` itself, or the owner's earlier item with the same bytes.
    resolved_media = models.ForeignKey(
        MediaItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="fetched_from"
    )
    source_url = models.CharField(max_length=2048)
    page_url = models.CharField(max_length=2048, blank=True)  # the page that pointed to the media
    final_url = models.CharField(max_length=2048, blank=True)  # where the bytes came from, after redirects
    hops = models.JSONField(default=list)  # every URL requested, in order
    queue = models.CharField(max_length=16, default="interactive")
    state = models.CharField(max_length=12, choices=FetchState.choices, default=FetchState.PENDING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=100, blank=True)  # as the server declared it
    size = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"fetch {self.id} ({self.state})"


class StorageIntent(models.Model):
    """Bytes about to be written to (or deleted from) storage, recorded and committed before the storage call.

    The transaction that makes the bytes legitimate (the item's row) deletes this record; a process killed
    between the storage call and that commit leaves it behind, and `media_storage_sweep_orphans` removes the
    bytes once the record is older than a grace period (docs/media.md, "Orphans"). Storage is never listed.
    """

    media_id = models.UUIDField(db_index=True)
    key = models.CharField(max_length=255)
    s3_upload_id = models.CharField(max_length=1024, blank=True)  # an S3 multipart upload to abort
    multipart_upload_id = models.UUIDField(null=True, blank=True)  # filesystem parts to discard
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"storage intent {self.key}"
