"""Review assignment benchmark: optimal (scipy) vs the guide's greedy priority-first baseline, and pull-claim
latency with 50 concurrent claimers on PostgreSQL.

    python bench/assignment.py                 # assignment only (pure, no database)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlekkr python bench/assignment.py   # plus claim latency

The claim part creates and drops its own database (<name>_bench_review), never touching the app's data.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from review.assignment import ItemIn, ModeratorIn, assign, assign_greedy, is_matching_expert, total_score

TAGS = ("image", "video", "audio_voice", "face_manipulation", "provenance", "generated")
SIZES = ((100, 10), (1000, 50), (2000, 200))


def workload(n_items: int, n_mods: int, seed: int = 42) -> tuple[list[ItemIn], list[ModeratorIn]]:
    rng = random.Random(seed)
    items = [
        ItemIn(
            id=f"i{i}",
            priority=rng.choices(["critical", "high", "medium", "low"], weights=[1, 3, 4, 2])[0],
            seconds_left=rng.uniform(-1800, 8 * 3600),
            sla_seconds=8 * 3600,
            required_expertise=tuple(rng.sample(TAGS, rng.choice([1, 1, 2]))),
            open_slots=rng.choice([1, 1, 1, 1, 2]),
        )
        for i in range(n_items)
    ]
    mods = []
    for m in range(n_mods):
        seniority = rng.choices(["junior", "senior", "lead"], weights=[5, 4, 1])[0]
        capacity = {"junior": 3, "senior": 5, "lead": 7}[seniority]
        mods.append(
            ModeratorIn(
                id=f"m{m}",
                seniority=seniority,
                expertise={t: rng.randint(1, 5) for t in rng.sample(TAGS, 3)},
                capacity=capacity,
                load=rng.randint(0, capacity - 1),
            )
        )
    return items, mods


def describe(pairs: list[tuple[str, str]], items: list[ItemIn], mods: list[ModeratorIn]) -> tuple[float, float, float]:
    by_item = {i.id: i for i in items}
    by_mod = {m.id: m for m in mods}
    experts = sum(is_matching_expert(by_item[i], by_mod[m]) for i, m in pairs)
    given = Counter(m for _, m in pairs)
    utilisation = [(m.load + given[m.id]) / m.capacity for m in mods]
    return total_score(pairs, items, mods), experts / max(len(pairs), 1), statistics.pstdev(utilisation)


def bench_assignment() -> None:
    print(
        "items x mods | optimal ms (best of 5) | greedy ms | score ratio opt/greedy | expert share opt/greedy"
        " | utilisation stdev opt/greedy | pairs"
    )
    for n_items, n_mods in SIZES:
        items, mods = workload(n_items, n_mods)
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            optimal = assign(items, mods)
            timings.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        greedy = assign_greedy(items, mods)
        greedy_ms = (time.perf_counter() - start) * 1000
        opt_score, opt_expert, opt_spread = describe(optimal, items, mods)
        gr_score, gr_expert, gr_spread = describe(greedy, items, mods)
        print(
            f"{n_items:>5} x {n_mods:<4} | {min(timings):8.1f} | {greedy_ms:8.1f} | {opt_score / gr_score:6.3f}"
            f" | {opt_expert:.2f} / {gr_expert:.2f} | {opt_spread:.3f} / {gr_spread:.3f} | {len(optimal)}"
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _in_processes(n: int, target: Any, args: list[tuple[Any, ...]]) -> tuple[list[Any], float]:
    """Run `target(*args[i], barrier, results)` in n forked processes released together; what each put on the
    queue, and the wall time from the release to the last result."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(n + 1)
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args[i], barrier, results)) for i in range(n)]
    for process in processes:
        process.start()
    barrier.wait()
    wall = time.perf_counter()
    gathered = [results.get(timeout=600) for _ in processes]
    wall = time.perf_counter() - wall
    for process in processes:
        process.join(timeout=60)
    return gathered, wall


def _cpu_seconds() -> tuple[float, float]:
    """CPU used so far by this process and by its PostgreSQL backend (Linux /proc: the server is local)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return time.process_time(), (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def bench_claims(n_items: int = 1000, n_claimers: int = 50, n_solo: int = 100) -> None:
    """Claim latency alone and with `n_claimers` concurrent claimer processes, each beside the same measurement
    of a trivial transaction (BEGIN; SELECT 1; COMMIT through Django), so the run shows what the machine itself
    does to a latency ratio when 50 processes share its cores."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("claim latency: skipped (set DATABASE_URL to a PostgreSQL server)")
        return
    base, _, name = url.rpartition("/")
    os.environ["DATABASE_URL"] = f"{base}/{name}_bench_review"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")
    os.environ.setdefault("HLEKKR_LOG_LEVEL", "WARNING")
    import psycopg

    admin_url = f"{base}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}_bench_review"')
        conn.execute(f'CREATE DATABASE "{name}_bench_review"')
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext

        call_command("migrate", verbosity=0)
        from django.utils import timezone

        import hlekkr.audit.services as audit_services
        from analysis.models import Analysis
        from hlekkr.accounts.models import Role, User
        from hlekkr.exceptions import HlekkrError
        from media.models import MediaItem
        from review.models import EscalationPolicy, ModeratorProfile, ReviewItem
        from review.services import review_item_claim_next

        EscalationPolicy.objects.filter(is_active=True).update(auto_assign=False)
        owner = User.objects.create_user(username="bench-client", password=None, role=Role.CLIENT)
        media = MediaItem.objects.bulk_create(
            [MediaItem(owner=owner, kind="image", sha256=f"{i:064x}", status="stored") for i in range(n_items)]
        )
        analyses = Analysis.objects.bulk_create([Analysis(media=m, run_number=1, status="completed") for m in media])
        now = timezone.now()
        rng = random.Random(1)
        ReviewItem.objects.bulk_create(
            [
                ReviewItem(
                    analysis=a,
                    media=a.media,
                    priority=p,
                    priority_rank=["critical", "high", "medium", "low"].index(p),
                    required_expertise=[rng.choice(TAGS)],
                    due_at=now + datetime.timedelta(minutes=rng.randint(-30, 600)),
                    kind="image",
                    machine_probability=0.7,
                )
                for a in analyses
                for p in [rng.choice(["critical", "high", "medium", "low"])]
            ]
        )
        users = []
        for n in range(n_claimers):
            user = User.objects.create_user(username=f"bench-mod-{n}", password=None, role=Role.MODERATOR)
            ModeratorProfile.objects.create(user=user, seniority="lead", expertise={rng.choice(TAGS): 4})
            users.append(user)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have by now on a real queue
        claims_each = users[0].moderator_profile.capacity  # every claimer claims until at capacity

        # The after-commit audit seal (hlekkr/audit, docs/audit.md) runs inside the claim call; time it apart.
        seal_ms: list[float] = []
        real_seal = audit_services.audit_seal_after_commit

        def timed_seal() -> None:
            start = time.perf_counter()
            real_seal()
            seal_ms.append((time.perf_counter() - start) * 1000)

        audit_services.audit_seal_after_commit = timed_seal

        def claim(user: Any) -> tuple[float, float, str]:
            """One claim: total ms, ms of it in the audit seal, the item claimed."""
            seal_ms.clear()
            start = time.perf_counter()
            item = review_item_claim_next(user=user)
            return (time.perf_counter() - start) * 1000, sum(seal_ms), str(item.pk)

        def trivial() -> float:
            start = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return (time.perf_counter() - start) * 1000

        # Baselines in the same run: one claimer alone (what a single moderator's click costs), and a trivial
        # transaction alone. The first of each opens the connection and is left out.
        solo_user = User.objects.create_user(username="bench-solo", password=None, role=Role.MODERATOR)
        ModeratorProfile.objects.create(
            user=solo_user, seniority="lead", expertise={TAGS[0]: 4}, max_concurrent=n_solo + 2
        )
        review_item_claim_next(user=solo_user)
        with CaptureQueriesContext(connection) as ctx:
            claim(solo_user)
        sent = [q["sql"] for q in ctx.captured_queries]
        claim_sql = [sql for sql in sent[: sent.index("COMMIT")] if sql != "BEGIN"]  # the audit seal follows
        cpu_before = _cpu_seconds()
        solo_runs = [claim(solo_user) for _ in range(n_solo)]
        cpu_client, cpu_server = (after - before for after, before in zip(_cpu_seconds(), cpu_before, strict=True))
        solo = [total for total, _, _ in solo_runs]
        solo_own = [total - seal for total, seal, _ in solo_runs]
        trivial()
        solo_trivial = [trivial() for _ in range(n_solo)]
        connection.close()

        def claimer(user_id: int, barrier: Any, results: Any) -> None:
            # A separate process per claimer, as separate web/API workers are in production: threads in one
            # process would measure queueing for the interpreter lock, not the database.
            user = User.objects.get(pk=user_id)
            barrier.wait()
            mine: list[tuple[float, float, str]] = []
            while True:
                try:
                    mine.append(claim(user))
                except HlekkrError:
                    break
            connection.close()
            results.put(mine)

        def trivial_worker(seconds: float, barrier: Any, results: Any) -> None:
            # Back to back for as long as the claims took, so 50 processes contend for as long as claimers did.
            connection.ensure_connection()
            barrier.wait()
            mine: list[float] = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                mine.append(trivial())
            connection.close()
            results.put(mine)

        def busy(cpu_ms: float) -> float:
            """Wall ms to get `cpu_ms` of CPU: an operation that is pure CPU work of a lone claim's size."""
            start, cpu_end = time.perf_counter(), time.process_time() + cpu_ms / 1000
            while time.process_time() < cpu_end:
                pass
            return (time.perf_counter() - start) * 1000

        def busy_worker(cpu_ms: float, barrier: Any, results: Any) -> None:
            barrier.wait()
            results.put([busy(cpu_ms) for _ in range(claims_each)])

        load_before = os.getloadavg()[0]
        gathered, wall = _in_processes(n_claimers, claimer, [(u.pk,) for u in users])
        gathered_trivial, trivial_wall = _in_processes(n_claimers, trivial_worker, [(wall,)] * n_claimers)
        cpu_ms = (cpu_client + cpu_server) * 1000 / n_solo
        busy_lone = [busy(cpu_ms) for _ in range(20)]
        gathered_busy, busy_wall = _in_processes(n_claimers, busy_worker, [(cpu_ms,)] * n_claimers)
        load_after = os.getloadavg()[0]
        many_busy = [ms for batch in gathered_busy for ms in batch]
        runs = [run for batch in gathered for run in batch]
        latencies = [total for total, _, _ in runs]
        own = [total - seal for total, seal, _ in runs]
        claimed = [pk for _, _, pk in runs]
        many_trivial = [ms for batch in gathered_trivial for ms in batch]
        doubles = len(claimed) - len(set(claimed))

        lone50, lone99 = _pct(solo, 0.5), _pct(solo, 0.99)
        p50, p99 = _pct(latencies, 0.5), _pct(latencies, 0.99)
        t_lone50, t50, t99 = _pct(solo_trivial, 0.5), _pct(many_trivial, 0.5), _pct(many_trivial, 0.99)
        print(
            f"claim: {len(claim_sql)} SQL statements in its transaction (besides BEGIN/COMMIT), then the audit seal"
            f" after commit; {os.cpu_count()} cores, load average {load_before:.1f} before, {load_after:.1f} after"
        )
        print(
            f"claim, one claimer alone ({n_solo} claims): p50 {lone50:.2f} ms, p99 {lone99:.2f} ms;"
            f" without the after-commit audit seal p50 {_pct(solo_own, 0.5):.2f} ms, p99 {_pct(solo_own, 0.99):.2f} ms;"
            f" CPU per claim {cpu_ms:.1f} ms (Python {cpu_client * 1000 / n_solo:.1f},"
            f" PostgreSQL backend {cpu_server * 1000 / n_solo:.1f})"
        )
        print(
            f"claim, {n_claimers} concurrent claimer processes over {n_items} items: {len(latencies)} claims in"
            f" {wall:.2f} s, p50 {p50:.1f} ms ({p50 / lone50:.1f}x alone), p99 {p99:.1f} ms"
            f" (**{p99 / lone50:.1f}x a lone claim's p50**, {p99 / lone99:.1f}x its p99; target <= 10x);"
            f" without the audit seal p99 {_pct(own, 0.99):.1f} ms; double assignments: {doubles}"
        )
        print(
            f"trivial transaction (BEGIN; SELECT 1; COMMIT) alone: p50 {t_lone50:.2f} ms; {n_claimers} processes"
            f" back to back for {trivial_wall:.2f} s: {len(many_trivial)} transactions, p50 {t50:.2f} ms,"
            f" p99 {t99:.1f} ms (**{t99 / t_lone50:.0f}x alone**)"
        )
        b50, b99 = _pct(many_busy, 0.5), _pct(many_busy, 0.99)
        print(
            f"pure CPU work of a claim's size ({cpu_ms:.1f} ms of CPU), {n_claimers} processes x {claims_each}:"
            f" alone p50 {_pct(busy_lone, 0.5):.1f} ms; p50 {b50:.0f} ms ({b50 / _pct(busy_lone, 0.5):.1f}x alone),"
            f" p99 {b99:.0f} ms (**{b99 / _pct(busy_lone, 0.5):.1f}x alone**: the"
            f" ratio {n_claimers} processes on {os.cpu_count()} cores give any CPU-bound operation) in {busy_wall:.2f} s"
        )
        print(
            f"claim p99 with {n_claimers} claimers = {p99 / t99:.1f}x the trivial transaction's p99 and"
            f" {p99 / b99:.2f}x the CPU-bound operation's p99 at the same concurrency; claims per second"
            f" {len(latencies) / wall:.0f} together vs {1000 / statistics.mean(solo):.0f} alone"
        )
        connection.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_bench_review" WITH (FORCE)')


if __name__ == "__main__":
    bench_assignment()
    bench_claims()
