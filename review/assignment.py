"""Optimal batch assignment of review items to moderators. Pure: plain data in, pairs out (see assignment.md).

Rows are open reviewer slots of items (an item needing two reviewers contributes two rows); columns are free
capacity slots of moderators (a moderator with k free slots contributes k columns, the j-th of which carries
the workload the moderator would have after taking j more items). `scipy.optimize.linear_sum_assignment`
maximises the summed score over a matching; pairs that break a rule (critical item to a junior, a moderator
already on the item) get a prohibitive cost and are dropped from the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

PRIORITY_WEIGHT = {"critical": 100.0, "high": 60.0, "medium": 30.0, "low": 10.0}
URGENCY_WEIGHT = 40.0  # SLA nearly used up: +40; overdue: +URGENCY_WEIGHT + OVERDUE_BONUS
OVERDUE_BONUS = 20.0
EXPERTISE_WEIGHT = 25.0  # mean required-tag level 5/5 scores +25
WORKLOAD_WEIGHT = 15.0  # a moderator's last free slot costs 15 more than their first
EXPERT_LEVEL = 3  # a "matching expert" has every required tag at this level or above
_FORBIDDEN = 1e9
_REPAIR_ROUNDS = 2


@dataclass(frozen=True)
class ItemIn:
    id: str
    priority: str
    seconds_left: float  # until due_at; negative when overdue
    sla_seconds: float  # the whole SLA window for this priority
    required_expertise: tuple[str, ...] = ()
    open_slots: int = 1
    excluded: frozenset[str] = field(default_factory=frozenset)  # moderators already on it (held or decided)
    lead_only: bool = False  # escalated items go to leads


@dataclass(frozen=True)
class ModeratorIn:
    id: str
    seniority: str  # junior | senior | lead
    expertise: dict[str, int]
    capacity: int
    load: int  # items held now

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)


def item_base_score(item: ItemIn) -> float:
    """What assigning the item at all is worth: priority plus SLA urgency (overdue items surface first)."""
    base = PRIORITY_WEIGHT.get(item.priority, 10.0)
    if item.seconds_left <= 0:
        return base + URGENCY_WEIGHT + OVERDUE_BONUS
    used = 1.0 - min(1.0, item.seconds_left / max(item.sla_seconds, 1.0))
    return base + URGENCY_WEIGHT * used


def expertise_score(item: ItemIn, moderator: ModeratorIn) -> float:
    if not item.required_expertise:
        return 0.0
    levels = [min(5, max(0, int(moderator.expertise.get(tag, 0)))) for tag in item.required_expertise]
    return EXPERTISE_WEIGHT * (sum(levels) / (5.0 * len(levels)))


def is_matching_expert(item: ItemIn, moderator: ModeratorIn) -> bool:
    return all(int(moderator.expertise.get(tag, 0)) >= EXPERT_LEVEL for tag in item.required_expertise)


def seniority_refusal(seniority: str, *, priority: str, lead_only: bool) -> str | None:
    """The one rule for who may take which review item, used by the batch run, pull claims, lead assignment
    and the queue query: escalated (lead-only) items go to leads, critical items to seniors and leads. Returns
    the refusal code (`lead_only`, `insufficient_seniority`), or None when the moderator may take the item."""
    if lead_only and seniority != "lead":
        return "lead_only"
    if priority == "critical" and seniority not in ("senior", "lead"):
        return "insufficient_seniority"
    return None


def eligible(item: ItemIn, moderator: ModeratorIn) -> bool:
    if moderator.id in item.excluded:
        return False
    return seniority_refusal(moderator.seniority, priority=item.priority, lead_only=item.lead_only) is None


def workload_penalty(moderator: ModeratorIn, extra: int) -> float:
    """Cost of giving `moderator` one more item when `extra` were already given in this run."""
    return WORKLOAD_WEIGHT * (moderator.load + extra) / max(moderator.capacity, 1)


def pair_score(item: ItemIn, moderator: ModeratorIn, extra: int = 0) -> float:
    """The score both the batch run and pull-mode claims use to compare (item, moderator) pairs."""
    return item_base_score(item) + expertise_score(item, moderator) - workload_penalty(moderator, extra)


def assign(items: Sequence[ItemIn], moderators: Sequence[ModeratorIn]) -> list[tuple[str, str]]:
    """The optimal set of (item_id, moderator_id) pairs. An item appears at most `open_slots` times and never
    twice with the same moderator; a moderator at most `free` times."""
    rows: list[int] = [i for i, item in enumerate(items) for _ in range(max(0, item.open_slots))]
    cols: list[tuple[int, int]] = [(m, j) for m, mod in enumerate(moderators) for j in range(mod.free)]
    if not rows or not cols:
        return []

    n_items, n_mods = len(items), len(moderators)
    base = np.array([item_base_score(item) for item in items])
    # Item x moderator terms, computed once per pair (not per slot): expertise and eligibility.
    tags = sorted({tag for item in items for tag in item.required_expertise})
    tag_index = {tag: k for k, tag in enumerate(tags)}
    need = np.zeros((n_items, max(len(tags), 1)))
    for i, item in enumerate(items):
        for tag in item.required_expertise:
            need[i, tag_index[tag]] = 1.0
    level = np.zeros((n_mods, max(len(tags), 1)))
    for m, mod in enumerate(moderators):
        for tag, k in tag_index.items():
            level[m, k] = min(5, max(0, int(mod.expertise.get(tag, 0))))
    counts = need.sum(axis=1, keepdims=True)
    expertise = EXPERTISE_WEIGHT * (need @ level.T) / (5.0 * np.maximum(counts, 1.0))
    allowed = np.ones((n_items, n_mods), dtype=bool)
    # seniority_refusal per moderator, once per kind of item (priority x lead-only: at most eight kinds)
    masks: dict[tuple[str, bool], np.ndarray] = {}
    mod_index = {mod.id: m for m, mod in enumerate(moderators)}
    for i, item in enumerate(items):
        kind = (item.priority, item.lead_only)
        if kind not in masks:
            masks[kind] = np.array(
                [
                    seniority_refusal(mod.seniority, priority=item.priority, lead_only=item.lead_only) is None
                    for mod in moderators
                ]
            )
        allowed[i] = masks[kind]
        for moderator_id in item.excluded:
            if moderator_id in mod_index:
                allowed[i, mod_index[moderator_id]] = False

    row_items = np.array(rows)
    col_mods = np.array([m for m, _ in cols])
    col_penalty = np.array([workload_penalty(moderators[m], j) for m, j in cols])
    pair_value = base[:, None] + expertise  # item x moderator, before workload
    row_allowed = allowed[row_items]

    # Only len(cols) rows can be matched. A row outside every moderator's top len(cols)+1 candidates can be swapped
    # for an unmatched row that scores at least as well for the same column, so dropping it keeps the optimum
    # and shrinks the matrix the solver sees (2,000 items x 50 moderators -> a few hundred rows).
    keep_n = len(cols) + 1
    if len(rows) > keep_n:
        ranked = np.where(row_allowed, pair_value[row_items], -np.inf)
        top = np.argpartition(-ranked, keep_n - 1, axis=0)[:keep_n]
        keep = np.zeros(len(rows), dtype=bool)
        keep[np.unique(top)] = True
        keep &= row_allowed.any(axis=1)
        row_items, row_allowed = row_items[keep], row_allowed[keep]
    if len(row_items) == 0:
        return []

    score = pair_value[row_items][:, col_mods] - col_penalty[None, :]
    forbidden = ~row_allowed[:, col_mods]
    chosen: list[tuple[int, int]] = []
    for _ in range(_REPAIR_ROUNDS):
        cost = np.where(forbidden, _FORBIDDEN, -score)
        row_ind, col_ind = linear_sum_assignment(cost)
        chosen = [(int(r), int(c)) for r, c in zip(row_ind, col_ind, strict=True) if not forbidden[r, c]]
        # Two slots of one item may land on two capacity slots of the same moderator: forbid that moderator
        # for the later slot and solve again (the workload term already makes this rare).
        seen: set[tuple[int, int]] = set()
        clash = False
        for r, c in chosen:
            key = (int(row_items[r]), int(col_mods[c]))
            if key in seen:
                forbidden[r, col_mods == col_mods[c]] = True
                clash = True
            seen.add(key)
        if not clash:
            break

    pairs: list[tuple[str, str]] = []
    taken: set[tuple[int, int]] = set()
    used_cols: set[int] = set()
    leftover: list[int] = []
    for r, c in chosen:
        key = (int(row_items[r]), int(col_mods[c]))
        if key in taken:
            leftover.append(r)  # a clash the rounds did not remove: never double up, place it below instead
            continue
        taken.add(key)
        used_cols.add(c)
        pairs.append((items[key[0]].id, moderators[key[1]].id))
    for r in leftover:
        free = [
            c
            for c in range(len(cols))
            if c not in used_cols and not forbidden[r, c] and (int(row_items[r]), int(col_mods[c])) not in taken
        ]
        if free:
            c = max(free, key=lambda k: score[r, k])
            taken.add((int(row_items[r]), int(col_mods[c])))
            used_cols.add(c)
            pairs.append((items[int(row_items[r])].id, moderators[int(col_mods[c])].id))
    return pairs


def assign_greedy(items: Sequence[ItemIn], moderators: Sequence[ModeratorIn]) -> list[tuple[str, str]]:
    """The guide's baseline: items in priority order, each to the best-scoring moderator with room."""
    extra = {mod.id: 0 for mod in moderators}
    order = sorted(range(len(items)), key=lambda i: (-PRIORITY_WEIGHT.get(items[i].priority, 0), items[i].seconds_left))
    pairs: list[tuple[str, str]] = []
    for i in order:
        item = items[i]
        used: set[str] = set()
        for _ in range(item.open_slots):
            best, best_score = None, -np.inf
            for mod in moderators:
                if mod.id in used or extra[mod.id] >= mod.free or not eligible(item, mod):
                    continue
                s = pair_score(item, mod, extra[mod.id])
                if s > best_score:
                    best, best_score = mod, s
            if best is None:
                break
            used.add(best.id)
            extra[best.id] += 1
            pairs.append((item.id, best.id))
    return pairs


def total_score(pairs: Sequence[tuple[str, str]], items: Sequence[ItemIn], moderators: Sequence[ModeratorIn]) -> float:
    """The objective both solvers are measured by (slot order within a moderator does not change the sum)."""
    by_item = {item.id: item for item in items}
    by_mod = {mod.id: mod for mod in moderators}
    extra: dict[str, int] = {}
    total = 0.0
    for item_id, moderator_id in pairs:
        j = extra.get(moderator_id, 0)
        total += pair_score(by_item[item_id], by_mod[moderator_id], j)
        extra[moderator_id] = j + 1
    return total
