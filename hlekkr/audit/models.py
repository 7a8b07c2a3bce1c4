"""An insert-only, hash-chained audit log (see docs/audit.md)."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One event. Written in the business transaction without its place in the chain (`sequence`, `prev_hash`,
    `hash` empty: the outbox), then sealed after commit by the one sequencer (hlekkr.audit.services)."""

    # Plain fields, not foreign keys: deleting a user or an object must never rewrite a row of the chain.
    sequence = models.BigIntegerField(unique=True, null=True, blank=True)
    created_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_repr = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    # NULL, not "", while unsealed: several unsealed rows must not collide on the unique hash.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        # Sealed rows in chain order, then rows still in the outbox in the order they were written.
        ordering = ["sequence", "id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            # The sequencer's work list: small, because rows leave it within a second of their commit.
            models.Index(fields=["id"], condition=models.Q(sequence__isnull=True), name="audit_event_unsealed"),
        ]
        constraints = [
            # Sealed means all three: a row never has a place in the chain without its hashes, or the reverse.
            models.CheckConstraint(
                condition=(
                    models.Q(sequence__isnull=True, prev_hash__isnull=True, hash__isnull=True)
                    | models.Q(sequence__isnull=False, prev_hash__isnull=False, hash__isnull=False)
                ),
                name="audit_event_sealed_whole",
            )
        ]

    def __str__(self) -> str:
        place = f"#{self.sequence}" if self.sequence is not None else "(unsealed)"
        return f"{place} {self.action} {self.object_type}:{self.object_id}"

    @property
    def sealed(self) -> bool:
        return self.sequence is not None
