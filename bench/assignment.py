"""Review assignment benchmark: optimal (scipy) vs the guide's greedy priority-first baseline, and pull-claim
latency with 50 concurrent claimers on PostgreSQL.

    python bench/assignment.py                 # assignment only (pure, no database)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hlekkr python bench/assignment.py   # plus claim latency

The claim part creates and drops its own database (<name>_bench_review), never touching the app's data.
"""

from __future__ import annotations

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


def bench_claims(n_items: int = 1000, n_claimers: int = 50) -> None:
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
        from django.db import connection

        call_command("migrate", verbosity=0)
        from django.utils import timezone

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
                    due_at=now + timezone.timedelta(minutes=rng.randint(-30, 600)),
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
        connection.close()

        # Baseline in the same run: one claimer alone (what a single moderator's click costs).
        solo_user = User.objects.create_user(username="bench-solo", password=None, role=Role.MODERATOR)
        ModeratorProfile.objects.create(user=solo_user, seniority="lead", expertise={TAGS[0]: 4}, max_concurrent=20)
        solo: list[float] = []
        for _ in range(20):
            start = time.perf_counter()
            review_item_claim_next(user=solo_user)
            solo.append((time.perf_counter() - start) * 1000)
        connection.close()
        solo.sort()

        def work(user_id: int, barrier: Any, results: Any) -> None:
            # A separate process per claimer, as separate web/API workers are in production: threads in one
            # process would measure queueing for the interpreter lock, not the database.
            from django.db import connection as process_connection

            user = User.objects.get(pk=user_id)
            barrier.wait()
            mine: list[tuple[float, str]] = []
            while True:
                start = time.perf_counter()
                try:
                    item = review_item_claim_next(user=user)
                except HlekkrError:
                    break
                mine.append(((time.perf_counter() - start) * 1000, str(item.pk)))
            process_connection.close()
            results.put(mine)

        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(n_claimers)
        results = context.Queue()
        processes = [context.Process(target=work, args=(u.pk, barrier, results)) for u in users]
        for process in processes:
            process.start()
        wall = time.perf_counter()
        gathered = [results.get(timeout=600) for _ in processes]
        wall = time.perf_counter() - wall
        for process in processes:
            process.join(timeout=60)
        latencies = sorted(ms for batch in gathered for ms, _ in batch)
        claimed = [pk for batch in gathered for _, pk in batch]

        def pct(values: list[float], q: float) -> float:
            return values[min(len(values) - 1, int(len(values) * q))]

        p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
        doubles = len(claimed) - len(set(claimed))
        print(f"claim latency, one claimer alone: p50 {pct(solo, 0.5):.1f} ms, p99 {pct(solo, 0.99):.1f} ms (baseline)")
        print(
            f"claim latency, {n_claimers} concurrent claimer processes over {n_items} items on {os.cpu_count()} cores:"
            f" {len(latencies)} claims in {wall:.2f} s, p50 {p50:.1f} ms ({p50 / pct(solo, 0.5):.1f}x alone),"
            f" p99 {p99:.1f} ms ({p99 / pct(solo, 0.5):.1f}x alone) (target p99 < 20 ms), double assignments: {doubles}"
        )
        connection.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_bench_review" WITH (FORCE)')


if __name__ == "__main__":
    bench_assignment()
    bench_claims()
