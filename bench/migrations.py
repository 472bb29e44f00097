"""Migration benchmark: up -> down -> up of the whole set, the stairway, and verify, in one run.

    .venv/bin/python bench/migrations.py [--repeat 5]

Paths (each on a fresh database per round, on $DATABASE_URL's server, else embedded PostgreSQL 18;
creating the database is not timed):

- ``yoyo-api``: yoyo's own Python API (get_backend, lock, apply/rollback), nothing of ours:
  the baseline of every ratio;
- ``pa-db``: ``apply`` / ``rollback(all=True)`` / ``apply`` (adds set-up checks, the advisory
  set-up lock, per-migration lock-timeout handling and content-hash records);
- ``stairway``: for every migration apply, snapshot, roll back, snapshot, apply, snapshot (what
  tests/test_migrate.py proves), timed as a whole;
- ``verify``: one ``pa-db migrate verify`` at head (drift, snapshot, validity, orphans);
- readiness: ``migration_status(conn)`` against ``SELECT 1`` on the same AsyncConnection (asyncpg),
  per call, at head (what a readiness probe adds over a plain database check).

Goal (issue 5): up -> down -> up of the whole set <= 3 s. Paths run in shuffled order each round;
medians of ``--repeat`` rounds are reported, with ratios to ``yoyo-api`` from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import median, server_url, table  # noqa: E402
from _plot import write_ratio_chart  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from yoyo import get_backend, read_migrations  # noqa: E402

from personal_assistant_db.migrate import apply, migration_status, rollback, verify  # noqa: E402
from personal_assistant_db.migrate.snapshot import snapshot  # noqa: E402
from personal_assistant_db.migrate.source import SOURCE, shipped_ids  # noqa: E402
from personal_assistant_db.migrate.target import target_of  # noqa: E402
from personal_assistant_db.testing import fresh_database  # noqa: E402
from personal_assistant_db.urls import parse_database_url  # noqa: E402

GOAL_SECONDS = 3.0


def yoyo_api(url: str) -> None:
    backend = get_backend(target_of(url).yoyo_uri())
    migrations = read_migrations(SOURCE)
    try:
        for direction in ("apply", "rollback", "apply"):
            with backend.lock():
                if direction == "apply":
                    backend.apply_migrations(backend.to_apply(migrations))
                else:
                    backend.rollback_migrations(backend.to_rollback(migrations))
    finally:
        backend.connection.close()


def pa_db(url: str) -> None:
    apply(url)
    rollback(url, all=True)
    apply(url)


def stairway(url: str) -> None:
    target = target_of(url)
    for mid in shipped_ids():
        apply(target, to=mid)
        with target.connect() as conn:
            snapshot(conn)
        rollback(target, steps=1)
        with target.connect() as conn:
            snapshot(conn)
        apply(target, to=mid)
        with target.connect() as conn:
            snapshot(conn)


def verify_at_head(url: str) -> Callable[[], None]:
    apply(url)

    def run() -> None:
        assert verify(url).ok

    return run


async def _readiness(url: str, calls: int) -> tuple[float, float]:
    engine = create_async_engine(parse_database_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await migration_status(conn)  # warm: shipped IDs cached, statements prepared
            started = time.perf_counter()
            for _ in range(calls):
                await conn.execute(text("SELECT 1"))
            plain = (time.perf_counter() - started) / calls
            started = time.perf_counter()
            for _ in range(calls):
                assert (await migration_status(conn)).at_head
            ours = (time.perf_counter() - started) / calls
    finally:
        await engine.dispose()
    return plain, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plot", metavar="SVG", help="also write the ratio table as an SVG chart")
    args = parser.parse_args()
    server = server_url()
    paths: dict[str, Callable[[str], object]] = {
        "yoyo-api": yoyo_api,
        "pa-db": pa_db,
        "stairway": stairway,
    }
    results: dict[str, list[float]] = {name: [] for name in [*paths, "verify"]}
    for _ in range(args.repeat):
        order = [*paths, "verify"]
        random.shuffle(order)
        for name in order:
            with fresh_database(server, prefix="pa_bench_mig") as url:
                if name == "verify":
                    run = verify_at_head(url)
                    started = time.perf_counter()
                    run()
                else:
                    started = time.perf_counter()
                    paths[name](url)
                results[name].append(time.perf_counter() - started)
    base = median(results["yoyo-api"])
    rows = []
    for name, values in results.items():
        m = median(values)
        rows.append(
            [name, f"{m:.3f}", f"{min(values):.3f}", f"{max(values):.3f}", f"{m / base:.2f}x"]
        )
    migrations = len(shipped_ids())
    print(f"{migrations} migrations, {args.repeat} rounds, server {server.split('@')[-1]}")
    print(table(["path", "median s", "min s", "max s", "vs yoyo-api"], rows))
    if args.plot:
        write_ratio_chart(
            args.plot,
            title="bench/migrations.py: time per path (lower is better)",
            baseline="yoyo-api",
            groups=[(name, [("time", median(v) / base)]) for name, v in results.items()],
            note=f"{migrations} migrations, {args.repeat} rounds (medians)",
        )
    up_down_up = median(results["pa-db"])
    with fresh_database(server, prefix="pa_bench_mig") as url:
        apply(url)
        pairs = [asyncio.run(_readiness(url, 500)) for _ in range(args.repeat)]
    plain = median([p for p, _ in pairs]) * 1e6
    ours = median([o for _, o in pairs]) * 1e6
    print(
        f"readiness per call: SELECT 1 {plain:.0f} us, migration_status {ours:.0f} us "
        f"({ours / plain:.2f}x)"
    )
    verdict = "OK" if up_down_up <= GOAL_SECONDS else "MISSED"
    print(f"goal: up -> down -> up <= {GOAL_SECONDS:.0f} s: {up_down_up:.3f} s ({verdict})")
    return 0 if up_down_up <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
