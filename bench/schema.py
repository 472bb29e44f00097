"""What ``?schema=`` costs the app: a PK lookup on ``users`` with and without it, one run.

    .venv/bin/python bench/schema.py [--seconds 1.0] [--repeat 3] [--tasks 16] [--pool 20]

One fresh database (on $DATABASE_URL's server, or an embedded one) migrated twice: ``public``
and ``auth``, each with the same 10,000 users. Paths, 16 concurrent tasks, pool 20 each, in
shuffled order per round, medians of ``--repeat`` rounds:

- ``asyncpg``: raw asyncpg ``Pool`` (``acquire`` + ``fetchrow``) on ``public``: the baseline;
- ``fast public``: ``db.fetch_one(select(models.users).where(id == :id))``, no ``?schema=``;
- ``fast auth``: the same statement, ``DATABASE_URL`` with ``?schema=auth`` (the engine's
  ``schema_translate_map``, rendered into the fast path's cached SQL);
- ``fast auth, text``: ``db.fetch_one("SELECT ... FROM users WHERE id = :id")`` with
  ``?schema=auth``: resolved by ``search_path`` alone;
- ``per-statement map``: the model statement with its own ``schema_translate_map``
  (``.execution_options``): what a translate map costs where the fast path cannot render it
  (it falls back to SQLAlchemy's execution path);
- ``orm public`` / ``orm auth``: ``AsyncSession.get(models.User, id)`` (identity map cleared per
  call), without and with ``?schema=auth``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import psycopg
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Runner, drive, median, server_url, table

from personal_assistant_db import Database, models
from personal_assistant_db.migrate import apply
from personal_assistant_db.testing import fresh_database, plain_url

USERS = 10_000
BY_ID = select(models.users).where(models.users.c.id == bindparam("id"))
BY_ID_TRANSLATED = BY_ID.execution_options(schema_translate_map={None: "auth"})
BY_ID_TEXT = text(
    "SELECT id, email, display_name, password_hash, is_active, is_verified, failed_login_count,"
    " locked_until, last_login_at, created_at, updated_at FROM users WHERE id = :id"
)
FILL = (
    "INSERT INTO users (email, password_hash) SELECT 'u' || g || '@example.com', '$x$' || g"
    " FROM generate_series(1, %s) g"
)


def database(url: str, pool: int) -> Database:
    return Database.from_env(
        {
            "DATABASE_URL": url,
            "DB_ENV": "production",
            "DB_POOL_SIZE": str(pool),
            "DB_MAX_OVERFLOW": "0",
            "DB_WARMUP_CONNECTIONS": str(pool),
            "DB_POOL_PRE_PING": "false",
            "DB_SLOW_QUERY_MS": "0",
        }
    )


def _key() -> int:
    return random.randint(1, USERS)


async def main(args: argparse.Namespace) -> None:
    with fresh_database(server_url(), prefix="pa_bench_schema") as url:
        apply(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA auth")
        apply(f"{url}?schema=auth")
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in ("public", "auth"):
                conn.execute(f"SET search_path = {schema}")
                conn.execute(FILL.encode() % str(USERS).encode())
                conn.execute("ANALYZE users")
        await run(args, url)


async def run(args: argparse.Namespace, url: str) -> None:
    raw = await asyncpg.create_pool(
        plain_url(url), min_size=args.pool, max_size=args.pool, statement_cache_size=100
    )
    public, auth = database(url, args.pool), database(f"{url}?schema=auth", args.pool)
    mapped = database(url, args.pool)  # its own pool: the fallback path shares nothing
    for db in (public, auth, mapped):
        await db.start()
    public_sessions = async_sessionmaker(public.engine)
    auth_sessions = async_sessionmaker(auth.engine)
    raw_sql = str(BY_ID_TEXT).replace(":id", "$1")

    async def asyncpg_path(_: str) -> None:
        async with raw.acquire() as conn:
            await conn.fetchrow(raw_sql, _key())

    def fast(db: Database, statement: object) -> Runner:
        async def run_one(_: str) -> None:
            await db.fetch_one(statement, {"id": _key()})

        return run_one

    def orm(sessions: Callable[[], object]) -> Runner:
        async def run_one(_: str) -> None:
            async with sessions() as session:  # type: ignore[attr-defined]
                await session.get(models.User, _key())

        return run_one

    paths: dict[str, Runner] = {
        "asyncpg": asyncpg_path,
        "fast public": fast(public, BY_ID),
        "fast auth": fast(auth, BY_ID),
        "fast auth, text": fast(auth, BY_ID_TEXT),
        "per-statement map": fast(mapped, BY_ID_TRANSLATED),
        "orm public": orm(public_sessions),
        "orm auth": orm(auth_sessions),
    }
    rates: dict[str, list[float]] = {name: [] for name in paths}
    cpus: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for run_one in paths.values():  # warm every cache once
            await drive(run_one, "", args.tasks, 0.2)
        for _ in range(args.repeat):
            for name in random.sample(list(paths), len(paths)):
                rate, _latencies, cpu = await drive(paths[name], "", args.tasks, args.seconds)
                rates[name].append(rate)
                cpus[name].append(cpu)
    finally:
        for db in (public, auth, mapped):
            await db.stop()
        await raw.close()
    assert not auth.fast_path.fallbacks.get("schema_translate_map"), auth.fast_path.fallbacks
    base = median(rates["asyncpg"])
    rows = []
    for name in paths:
        rate = median(rates[name])
        same = "fast public" if name.startswith(("fast", "per-")) else "orm public"
        rows.append(
            [
                name,
                f"{rate:,.0f}",
                f"{rate / base:.2f}",
                "" if name == "asyncpg" else f"{rate / median(rates[same]):.2f}",
                f"{median(cpus[name]) * 1e6:.0f}",
                "" if name == "asyncpg" else f"{median(cpus[name]) / median(cpus[same]):.2f}",
            ]
        )
    print(
        f"PK lookup on users ({USERS:,} rows), {args.tasks} tasks, pool {args.pool}, "
        f"median of {args.repeat} x {args.seconds:g} s"
    )
    header = ["path", "queries/s", "vs asyncpg", "vs no schema", "CPU µs/query", "CPU vs no schema"]
    print(table(header, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--pool", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
