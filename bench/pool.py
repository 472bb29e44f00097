"""Pool benchmark: this package's engine vs plain SQLAlchemy vs raw asyncpg, in one process.

    .venv/bin/python bench/pool.py [--seconds 2] [--repeat 3] [--tasks 1,16,64]

Uses $DATABASE_URL's server (else embedded PostgreSQL 18), in a fresh database with 100k rows.
Targets (issue 2): overhead vs plain SQLAlchemy <= 5 % (ratio >= 0.95), pool efficiency >= 99 %,
lifespan start-to-ready with 10 warmed connections <= 150 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROWS, Runner, bench_database, drive, median, pct, table
from _plot import write_ratio_chart

from personal_assistant_db import Database
from personal_assistant_db.engines import connect_args
from personal_assistant_db.testing import plain_url

POOL = 20
QUERIES = {
    "select1": ("SELECT 1", "SELECT 1"),
    "pk": (
        "SELECT payload FROM bench_items WHERE id = :id",
        "SELECT payload FROM bench_items WHERE id = $1",
    ),
}


async def main(args: argparse.Namespace) -> None:
    with bench_database() as url:
        env = {
            "DATABASE_URL": url,
            "DB_ENV": "production",
            "DB_POOL_SIZE": str(POOL),
            "DB_MAX_OVERFLOW": "0",
            "DB_WARMUP_CONNECTIONS": str(POOL),
        }
        db = Database.from_env(env)
        await db.start()
        s = db.settings
        plain = create_async_engine(
            s.async_url,
            pool_size=POOL,
            max_overflow=0,
            pool_pre_ping=s.pool_pre_ping,
            pool_recycle=s.pool_recycle,
            connect_args=connect_args(s),
        )
        raw = await asyncpg.create_pool(
            plain_url(url),
            min_size=POOL,
            max_size=POOL,
            server_settings=connect_args(s)["server_settings"],
        )
        assert raw is not None
        pk_stmt, select1 = text(QUERIES["pk"][0]), text("SELECT 1")

        def params() -> dict[str, int]:
            return {"id": random.randint(1, ROWS)}

        async def ours(q: str) -> None:
            async with db.connect() as conn:
                await conn.execute(pk_stmt, params()) if q == "pk" else await conn.execute(select1)

        async def sqla(q: str) -> None:
            async with plain.connect() as conn:
                await conn.execute(pk_stmt, params()) if q == "pk" else await conn.execute(select1)

        async def asyncpg_raw(q: str) -> None:
            async with raw.acquire() as conn:
                if q == "pk":
                    await conn.fetchrow(QUERIES["pk"][1], random.randint(1, ROWS))
                else:
                    await conn.fetchval("SELECT 1")

        paths: dict[str, Runner] = {"asyncpg": asyncpg_raw, "plain-sqla": sqla, "pa-db": ours}
        for run in paths.values():  # warm statement caches
            await drive(run, "pk", 4, 0.3)

        rows = []
        for query in QUERIES:
            for tasks in args.tasks:
                results: dict[str, list[tuple[float, list[float], float]]] = {k: [] for k in paths}
                for _ in range(args.repeat):
                    for name in random.sample(list(paths), len(paths)):  # shuffle order per round
                        results[name].append(await drive(paths[name], query, tasks, args.seconds))
                qps = {k: median([r[0] for r in v]) for k, v in results.items()}
                for name, rs in results.items():
                    lat = [x for r in rs for x in r[1]]
                    rows.append(
                        [
                            query,
                            tasks,
                            name,
                            f"{qps[name]:.0f}",
                            f"{pct(lat, 0.5) * 1e3:.2f}",
                            f"{pct(lat, 0.95) * 1e3:.2f}",
                            f"{pct(lat, 0.99) * 1e3:.2f}",
                            f"{median([r[2] for r in rs]) * 1e6:.0f}",
                            f"{qps[name] / qps['plain-sqla']:.3f}",
                            f"{qps[name] / qps['asyncpg']:.3f}",
                        ]
                    )
        if args.plot:
            groups = [
                (
                    f"{q}, {t} task{'s' * (t != 1)}",
                    [(r[2], float(r[8])) for r in rows if (r[0], r[1]) == (q, t)],
                )
                for q, t in dict.fromkeys((r[0], r[1]) for r in rows)
            ]
            write_ratio_chart(
                args.plot,
                title="bench/pool.py: throughput (queries/s)",
                baseline="plain-sqla",
                groups=groups,
                note=f"pool {POOL}, --seconds {args.seconds:g} --repeat {args.repeat} (medians)",
            )
        print(
            table(
                [
                    "query",
                    "tasks",
                    "path",
                    "q/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "cpu us/q",
                    "vs plain-sqla",
                    "vs asyncpg",
                ],
                rows,
            )
        )

        # Python calls per query: a noise-free view of the per-query overhead (cProfile counts).
        counts = {}
        for name in ("plain-sqla", "pa-db"):
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(1000):
                await paths[name]("select1")
            profile.disable()
            counts[name] = pstats.Stats(profile).total_calls / 1000  # type: ignore[attr-defined]
        print(
            f"\nPython calls per SELECT 1: plain-sqla {counts['plain-sqla']:.0f}, "
            f"pa-db {counts['pa-db']:.0f} (+{counts['pa-db'] - counts['plain-sqla']:.0f}, "
            f"{counts['pa-db'] / counts['plain-sqla'] - 1:+.1%})"
        )

        # Efficiency under steady load: share of checkouts served by an already-open connection.
        before = db.pool_stats()
        await drive(ours, "pk", 16, args.seconds)
        after = db.pool_stats()
        checkouts = after.checkouts - before.checkouts
        reused = after.reused_checkouts - before.reused_checkouts
        print(
            f"\npool efficiency under steady load (16 tasks, pool {POOL}): "
            f"{reused}/{checkouts} = {reused / checkouts:.4%} (target >= 99%)"
        )
        await db.stop()
        await plain.dispose()
        await raw.close()

        # The production profile's pool (10 + 10 overflow) under more tasks than its core size:
        # overflow connections are closed on return, so churn shows up as lost efficiency.
        for tasks in (8, 16):
            prod = Database.from_env({"DATABASE_URL": url, "DB_ENV": "production"})
            await prod.start()

            async def prod_one(q: str, prod: Database = prod) -> None:
                async with prod.connect() as conn:
                    await conn.execute(pk_stmt, params())

            before = prod.pool_stats()
            await drive(prod_one, "pk", tasks, args.seconds)
            after = prod.pool_stats()
            checkouts = after.checkouts - before.checkouts
            reused = after.reused_checkouts - before.reused_checkouts
            print(
                f"pool efficiency, production profile (pool 10 + overflow 10), {tasks} tasks: "
                f"{reused}/{checkouts} = {reused / checkouts:.4%}, "
                f"connections opened {after.created - before.created}"
            )
            await prod.stop()

        # Start-to-ready with 10 warmed connections vs asyncpg.create_pool(min_size=10).
        ready, baseline = [], []
        for _ in range(args.repeat * 2):
            fresh = Database.from_env({**env, "DB_POOL_SIZE": "10", "DB_WARMUP_CONNECTIONS": "10"})
            began = time.perf_counter()
            async with fresh.lifespan(None):
                ready.append(time.perf_counter() - began)
            began = time.perf_counter()
            pool = await asyncpg.create_pool(plain_url(url), min_size=10, max_size=10)
            baseline.append(time.perf_counter() - began)
            await pool.close()
        print(
            f"lifespan start-to-ready, 10 warmed connections: median {median(ready) * 1e3:.1f} ms, "
            f"max {max(ready) * 1e3:.1f} ms (target <= 150 ms); asyncpg.create_pool(min_size=10): "
            f"{median(baseline) * 1e3:.1f} ms; ratio {median(ready) / median(baseline):.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--tasks", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--plot", metavar="SVG", help="also write the ratio table as an SVG chart")
    asyncio.run(main(parser.parse_args()))
