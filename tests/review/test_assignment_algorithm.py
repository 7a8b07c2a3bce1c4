"""review/assignment.py is pure: these tests need no database."""

from __future__ import annotations

import random
from collections import Counter

from review.assignment import ItemIn, ModeratorIn, assign, assign_greedy, total_score


def item(
    i: int,
    priority: str = "medium",
    *,
    slots: int = 1,
    tags: tuple[str, ...] = (),
    left: float = 3600.0,
    excluded: frozenset[str] = frozenset(),
    lead_only: bool = False,
) -> ItemIn:
    return ItemIn(
        id=f"i{i}",
        priority=priority,
        seconds_left=left,
        sla_seconds=8 * 3600,
        required_expertise=tags,
        open_slots=slots,
        excluded=excluded,
        lead_only=lead_only,
    )


def mod(name: str, seniority: str = "senior", *, capacity: int = 5, load: int = 0, **expertise: int) -> ModeratorIn:
    return ModeratorIn(id=name, seniority=seniority, expertise=expertise, capacity=capacity, load=load)


def test_it_never_gives_a_critical_item_to_a_junior() -> None:
    pairs = assign([item(1, "critical")], [mod("j", "junior")])
    assert pairs == []
    pairs = assign([item(1, "critical")], [mod("j", "junior"), mod("s", "senior")])
    assert pairs == [("i1", "s")]


def test_it_gives_two_reviewer_items_two_different_people() -> None:
    # One moderator with lots of room would be the cheapest place for both slots: the rule forbids it.
    pairs = assign([item(1, slots=2, tags=("image",))], [mod("expert", capacity=7, image=5), mod("other", capacity=7)])
    assert sorted(pairs) == [("i1", "expert"), ("i1", "other")]
    pairs = assign([item(1, slots=2)], [mod("only", capacity=7)])
    assert pairs == [("i1", "only")]


def test_it_respects_capacity_and_current_load() -> None:
    items = [item(i) for i in range(10)]
    pairs = assign(items, [mod("a", capacity=3, load=1), mod("b", capacity=5, load=5)])
    assert Counter(m for _, m in pairs) == {"a": 2}


def test_it_prefers_higher_priority_and_overdue_when_short_of_capacity() -> None:
    items = [item(1, "low"), item(2, "high"), item(3, "medium", left=-60), item(4, "medium")]
    pairs = assign(items, [mod("a", capacity=2)])
    assert {i for i, _ in pairs} == {"i2", "i3"}


def test_it_matches_expertise() -> None:
    items = [item(1, tags=("face_manipulation",)), item(2, tags=("audio_voice",))]
    mods = [mod("voice", capacity=1, audio_voice=5), mod("faces", capacity=1, face_manipulation=5)]
    assert sorted(assign(items, mods)) == [("i1", "faces"), ("i2", "voice")]


def test_it_skips_excluded_moderators_and_sends_escalations_to_leads() -> None:
    items = [item(1, excluded=frozenset({"a"})), item(2, lead_only=True)]
    pairs = assign(items, [mod("a"), mod("b"), mod("lead", "lead")])
    assert ("i1", "a") not in pairs
    assert ("i2", "lead") in pairs


def test_it_scores_at_least_as_well_as_the_greedy_baseline() -> None:
    rng = random.Random(7)
    tags = ("image", "video", "audio_voice", "face_manipulation", "provenance")
    items = [
        item(
            i,
            rng.choice(["critical", "high", "medium", "low"]),
            slots=rng.choice([1, 1, 1, 2]),
            tags=tuple(rng.sample(tags, rng.randint(0, 2))),
            left=rng.uniform(-3600, 8 * 3600),
        )
        for i in range(150)
    ]
    mods = [
        mod(
            f"m{k}",
            rng.choice(["junior", "senior", "lead"]),
            capacity=rng.randint(2, 6),
            **{t: rng.randint(1, 5) for t in rng.sample(tags, 2)},
        )
        for k in range(12)
    ]
    optimal, greedy = assign(items, mods), assign_greedy(items, mods)
    assert len(set(optimal)) == len(optimal)
    assert total_score(optimal, items, mods) >= total_score(greedy, items, mods) - 1e-6
    load = Counter(m for _, m in optimal)
    assert all(load[m.id] <= m.free for m in mods)


def test_it_returns_nothing_without_items_or_capacity() -> None:
    assert assign([], [mod("a")]) == []
    assert assign([item(1)], [mod("a", capacity=2, load=2)]) == []
