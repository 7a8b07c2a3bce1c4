"""The per-process hash-bank cache never serves a stale bank after a change the signature covers."""

from __future__ import annotations

from typing import Any

from analysis import selectors
from analysis.models import BankedHash, HashBank

HASH_A = "f" * 64
HASH_B = "0f" * 32


def banked() -> list[tuple[str, str, str]]:
    return [(e.bank, e.bank_kind, e.hash_hex) for e in selectors.hash_bank_entries()]


def test_added_hashes_deactivated_banks_and_changed_kinds_are_seen_on_the_next_analysis(db: Any) -> None:
    bank = HashBank.objects.create(name="fakes", kind="known_fake")
    BankedHash.objects.create(bank=bank, pdq_hash=HASH_A)
    assert banked() == [("fakes", "known_fake", HASH_A)]

    BankedHash.objects.create(bank=bank, pdq_hash=HASH_B)
    assert sorted(banked()) == [("fakes", "known_fake", HASH_B), ("fakes", "known_fake", HASH_A)]

    BankedHash.objects.filter(pdq_hash=HASH_A).delete()
    assert banked() == [("fakes", "known_fake", HASH_B)]

    HashBank.objects.filter(pk=bank.pk).update(kind="known_authentic")
    assert banked() == [("fakes", "known_authentic", HASH_B)]

    HashBank.objects.filter(pk=bank.pk).update(is_active=False)
    assert banked() == []


def test_an_unchanged_bank_is_served_from_the_cache_with_only_the_signature_queries(
    db: Any, django_assert_num_queries: Any
) -> None:
    bank = HashBank.objects.create(name="fakes", kind="known_fake")
    BankedHash.objects.create(bank=bank, pdq_hash=HASH_A)
    banked()
    with django_assert_num_queries(2):
        assert banked() == [("fakes", "known_fake", HASH_A)]
