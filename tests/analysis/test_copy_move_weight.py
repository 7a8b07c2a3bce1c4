"""Migration 0015 raises copy_move's weight in the untouched default policy only."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from analysis.models import ScoringPolicy

migration = importlib.import_module("analysis.migrations.0015_policy_v1_copy_move_weight")

pytestmark = pytest.mark.django_db


def default_policy() -> ScoringPolicy:
    return ScoringPolicy.objects.get(version=1, notes__startswith="Default policy")


def test_the_migrated_default_policy_weighs_copy_move_three_quarters() -> None:
    assert default_policy().weights["copy_move"] == 0.75


def test_an_operators_own_copy_move_weight_is_kept() -> None:
    policy = default_policy()
    policy.weights = {**policy.weights, "copy_move": 0.6}
    policy.save(update_fields=["weights"])
    migration.raise_weight(apps, None)
    assert default_policy().weights["copy_move"] == 0.6


def test_the_weight_goes_back_to_one_half_when_the_migration_is_reversed() -> None:
    migration.restore_weight(apps, None)
    assert default_policy().weights["copy_move"] == 0.5
    migration.raise_weight(apps, None)
    assert default_policy().weights["copy_move"] == 0.75
