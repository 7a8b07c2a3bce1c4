"""The audit chain's arithmetic: canonical encoding, hashing and verification. Pure; no ORM writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

GENESIS = "0" * 64


class ChainRow(Protocol):
    sequence: int
    created_at: datetime
    actor_id: int | None
    actor_repr: str
    action: str
    object_type: str
    object_id: str
    payload: Any
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def jsonable(value: Any) -> Any:
    """What the JSON column will give back: hash exactly that, so verification recomputes the same bytes."""
    return json.loads(canonical_json(value))


def row_hash(
    *,
    sequence: int,
    created_at: datetime,
    actor_id: int | None,
    actor_repr: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: Any,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "sequence": sequence,
            "created_at": created_at.isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor_repr": actor_repr,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    sequence: int
    problem: str

    def __str__(self) -> str:
        return f"row #{self.sequence}: {self.problem}"


def verify(rows: Iterable[ChainRow]) -> tuple[int, Break | None]:
    """Walk rows in sequence order; return (rows checked, first break or None)."""
    expected_prev = GENESIS
    expected_sequence: int | None = None
    checked = 0
    for row in rows:
        if expected_sequence is not None and row.sequence != expected_sequence:
            return checked, Break(row.sequence, f"sequence jumps from {expected_sequence - 1} (a row is missing)")
        if row.prev_hash != expected_prev:
            return checked, Break(row.sequence, "prev_hash does not match the previous row's hash (rows reordered?)")
        recomputed = row_hash(
            sequence=row.sequence,
            created_at=row.created_at,
            actor_id=row.actor_id,
            actor_repr=row.actor_repr,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            payload=row.payload,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            return checked, Break(row.sequence, "hash does not match the row's content (row edited)")
        expected_prev = row.hash
        expected_sequence = row.sequence + 1
        checked += 1
    return checked, None
