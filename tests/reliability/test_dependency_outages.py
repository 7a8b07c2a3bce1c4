"""Dependencies taken away and brought back: the broker during uploads, the cache, PostgreSQL, storage."""

from __future__ import annotations

import os

import pytest

from tests.reliability.faults import run_broker_outage, run_cache_outage, run_database_outage

pytestmark = [pytest.mark.slow, pytest.mark.reliability, pytest.mark.xdist_group("reliability")]

# The experiment takes the broker away for 30 s; CI runs a bounded 10 s version (same code path: every
# send during the outage fails), scripts/fault_trials.py the full 30 s.
BROKER_OUTAGE_S = float(os.environ.get("HLEKKR_FAULT_BROKER_OUTAGE_S", 10))


def test_uploads_during_a_broker_outage_succeed_or_503_and_are_all_analysed_after_it(fault_stack):
    report = run_broker_outage(fault_stack, outage_s=BROKER_OUTAGE_S, seed=30)
    print(report.summary())
    assert report.problems == [], report.summary()
    assert report.log_tracebacks == 0, report.summary()


def test_without_the_cache_reads_and_uploads_go_on_and_auth_fails_closed(fault_stack):
    report = run_cache_outage(fault_stack, outage_s=8, seed=31)
    print(report.summary())
    assert report.problems == [], report.summary()


# The 20 s; the bounded CI version is the same length (it is mostly waiting).
DATABASE_OUTAGE_S = float(os.environ.get("HLEKKR_FAULT_DATABASE_OUTAGE_S", 20))


def test_while_postgresql_refuses_connections_requests_fail_fast_with_503_and_recover(fault_stack):
    report = run_database_outage(fault_stack, outage_s=DATABASE_OUTAGE_S, seed=32)
    print(report.summary())
    assert report.problems == [], report.summary()
