"""PgBouncer benchmark: direct vs through PgBouncer in session and transaction mode, in one run.

    .venv/bin/python bench/pooler.py [--seconds 2] [--repeat 3] [--tasks 16,64] [--soak 20]
        [--plot docs/bench/pooler.svg]

Uses $DATABASE_URL's server (else embedded PostgreSQL 18) and a real PgBouncer (testing.PgBouncer).
Each cell is ``db.connect()`` + one primary-key lookup (3 statements on the wire: BEGIN, the
query, ROLLBACK), through this package's Database with the matching DB_POOLER. Cells run
interleaved ``--repeat`` times; the medians are reported as ratios to ``direct`` at the same
task count. Part two prices the prepared-statement options through transaction pooling on
plain SQLAlchemy engines; ``--soak`` runs the mixed correctness load (tests/pooler_helpers.py)
for that many seconds with 64 clients and prints its error and wrong-result counts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pooler_helpers (--soak)
from _common import ROWS, bench_database, median, pct, server_url, table
from _plot import write_ratio_chart

from personal_assistant_db import Database, Settings
from personal_assistant_db.engines import connect_args
from personal_assistant_db.testing import PgBouncer

PK = text("SELECT payload FROM bench_items WHERE id = :id")
APP_POOL = 20
Step = Callable[[], Awaitable[None]]


async def drive(step: Step, tasks: int, seconds: float) -> tuple[float, float]:
    """(operations/s, P95 ms) of ``tasks`` workers running ``step`` for ``seconds``."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            began = time.perf_counter()
            await step()
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return len(latencies) / (time.perf_counter() - began), pct(latencies, 0.95) * 1000


def db_step(db: Database) -> Step:
    async def step() -> None:
        async with db.connect() as conn:
            await conn.execute(PK, {"id": random.randint(1, ROWS)})

    return step


def fast_step(db: Database) -> Step:
    async def step() -> None:
        await db.fetch_val(PK, {"id": random.randint(1, ROWS)})

    return step


def engine_step(engine: AsyncEngine) -> Step:
    async def step() -> None:
        async with engine.connect() as conn:
            await conn.execute(PK, {"id": random.randint(1, ROWS)})

    return step


def env_for(url: str, pooler: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "DB_ENV": "production",
        "DB_POOLER": pooler,
        "DB_POOL_SIZE": str(APP_POOL),
        "DB_MAX_OVERFLOW": "0",
        "DB_WARMUP_CONNECTIONS": str(APP_POOL),
        "DB_POOL_TIMEOUT": "60",
        **extra,
    }


async def compare(
    args: argparse.Namespace, cells: dict[str, dict[str, str]], step_of: Callable[[Database], Step]
) -> list[list[Any]]:
    """Rows (tasks, path, ops/s, ratio to ``direct``, P95) of each cell's Database, interleaved."""
    dbs = {name: Database.from_env(env) for name, env in cells.items()}
    for db in dbs.values():
        await db.start()
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    try:
        for _ in range(args.repeat):
            for tasks in args.tasks:
                for name, db in dbs.items():
                    got = await drive(step_of(db), tasks, args.seconds)
                    results.setdefault((name, tasks), []).append(got)
    finally:
        for db in dbs.values():
            await db.stop()
    rows = []
    for tasks in args.tasks:
        base = median([r[0] for r in results[("direct", tasks)]])
        for name in cells:
            runs = results[(name, tasks)]
            qps, p95 = median([r[0] for r in runs]), median([r[1] for r in runs])
            rows.append([tasks, name, f"{qps:,.0f}", f"{qps / base:.2f}", f"{p95:.2f}"])
    return rows


async def paths(args: argparse.Namespace, url: str, bouncers: dict[str, PgBouncer]) -> None:
    cells = {
        "direct": env_for(url, "none"),
        "direct, DB_POOLER=pgbouncer-transaction": env_for(url, "pgbouncer-transaction"),
        "pgbouncer session (pool 20)": env_for(
            bouncers["session"].url_for(url), "pgbouncer-session"
        ),
        "pgbouncer transaction (pool 20)": env_for(
            bouncers["transaction20"].url_for(url), "pgbouncer-transaction"
        ),
        "pgbouncer transaction (pool 4)": env_for(
            bouncers["transaction4"].url_for(url), "pgbouncer-transaction"
        ),
    }
    rows = await compare(args, cells, db_step)
    print(f"\n== paths: db.connect() + PK lookup, app pool {APP_POOL}, medians of {args.repeat}")
    print(table(["tasks", "path", "ops/s", "vs direct", "P95 ms"], rows))
    if args.plot:
        write_ratio_chart(
            args.plot,
            title="bench/pooler.py: throughput through PgBouncer (db.connect() + PK lookup)",
            baseline="direct",
            groups=[
                (f"{t} tasks", [(str(r[1]), float(r[3])) for r in rows if r[0] == t])
                for t in args.tasks
            ],
            note=f"app pool {APP_POOL}, --seconds {args.seconds:g} --repeat {args.repeat}, medians",
        )


async def fast_path(args: argparse.Namespace, url: str, bouncers: dict[str, PgBouncer]) -> None:
    """The fast path (``db.fetch_val``, one statement outside a transaction) direct vs pooled."""
    cells = {
        "direct": env_for(url, "none"),
        "pgbouncer transaction (pool 20)": env_for(
            bouncers["transaction20"].url_for(url), "pgbouncer-transaction"
        ),
        "pgbouncer transaction (pool 4)": env_for(
            bouncers["transaction4"].url_for(url), "pgbouncer-transaction"
        ),
    }
    rows = await compare(args, cells, fast_step)
    print(f"\n== fast path: db.fetch_val(PK lookup), app pool {APP_POOL}, medians of {args.repeat}")
    print(table(["tasks", "path", "ops/s", "vs direct", "P95 ms"], rows))


def options(settings: Settings) -> dict[str, dict[str, Any]]:
    """The prepared-statement options for transaction pooling, as connect_args."""
    base = {"timeout": 10, "server_settings": {"application_name": settings.application_name}}
    shipped = connect_args(settings)
    no_suffix = {k: v for k, v in shipped.items() if k != "connection_class"}
    return {
        "shipped: caches off (unnamed, Parse with Bind) + SET LOCAL": shipped,
        "caches off, no SET LOCAL on BEGIN": no_suffix,
        "asyncpg cache off, SQLAlchemy cache on (stale after DDL)": {
            **base,
            "statement_cache_size": 0,
        },
        "unique names, caches off (fails outside a transaction)": {
            **base,
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__pa_{uuid.uuid4().hex}__",
        },
    }


async def option_costs(args: argparse.Namespace, url: str, bouncer: PgBouncer) -> None:
    pooled = bouncer.url_for(url)
    settings = Settings.from_env(env_for(pooled, "pgbouncer-transaction"))
    engines = {
        name: create_async_engine(
            settings.async_url, pool_size=APP_POOL, max_overflow=0, connect_args=connect_args
        )
        for name, connect_args in options(settings).items()
    }
    direct = Settings.from_env(env_for(url, "none"))
    engines = {
        "direct, named statements cached (baseline)": create_async_engine(
            direct.async_url,
            pool_size=APP_POOL,
            max_overflow=0,
            connect_args=connect_args(direct),
        ),
        **engines,
    }
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(args.repeat):
            for name, engine in engines.items():
                got = await drive(engine_step(engine), 16, args.seconds)
                results.setdefault(name, []).append(got)
    finally:
        for engine in engines.values():
            await engine.dispose()
    base = median([r[0] for r in results["direct, named statements cached (baseline)"]])
    shipped = median([r[0] for r in results[next(iter(options(settings)))]])
    rows = []
    for name, runs in results.items():
        qps, p95 = median([r[0] for r in runs]), median([r[1] for r in runs])
        rows.append(
            [name, f"{qps:,.0f}", f"{qps / base:.2f}", f"{qps / shipped:.2f}", f"{p95:.2f}"]
        )
    print(
        f"\n== statement options through transaction pooling (pool {bouncer.pool_size}), 16 tasks"
    )
    print(table(["option", "ops/s", "vs direct", "vs shipped", "P95 ms"], rows))


async def soak(seconds: float, url: str, bouncer: PgBouncer) -> None:
    from tests.pooler_helpers import run_load

    db = Database.from_env(
        {
            **env_for(bouncer.url_for(url), "pgbouncer-transaction"),
            "DB_POOL_SIZE": "40",
            "DB_MAX_OVERFLOW": "40",
        }
    )
    await db.start()
    try:
        report = await run_load(db, clients=64, seconds=seconds, health=db.health_app())
    finally:
        await db.stop()
    print(
        f"\n== soak: 64 clients, {seconds:g} s, transaction pooling with pool "
        f"{bouncer.pool_size}: {len(report.outcomes)} operations, {len(report.errors)} errors, "
        f"{len(report.wrong)} wrong results, probes {report.probes}"
    )


async def main(args: argparse.Namespace) -> None:
    server = server_url()
    bouncers = {
        "session": PgBouncer(server, pool_mode="session", pool_size=APP_POOL),
        "transaction20": PgBouncer(server, pool_mode="transaction", pool_size=APP_POOL),
        "transaction4": PgBouncer(server, pool_mode="transaction", pool_size=4),
    }
    try:
        for bouncer in bouncers.values():
            bouncer.start()
        print(f"pgbouncer: {bouncers['session'].admin('SHOW VERSION')[0][0]}")
        with bench_database() as url:
            if args.soak:
                await soak(args.soak, url, bouncers["transaction4"])
            await paths(args, url, bouncers)
            await fast_path(args, url, bouncers)
            await option_costs(args, url, bouncers["transaction4"])
    finally:
        for bouncer in bouncers.values():
            bouncer.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of the mixed load")
    parser.add_argument(
        "--plot", metavar="SVG", help="also write the paths' ratios as an SVG chart"
    )
    asyncio.run(main(parser.parse_args()))
