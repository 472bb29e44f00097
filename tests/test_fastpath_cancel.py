"""Cancelling a caller stops its statement on the server (a real PostgreSQL, pg_stat_activity
sampled while it happens): backends never exceed the pool's capacity plus one (the health
check's reserved connection), and every connection comes back clean or closed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy as sa

from personal_assistant_db import Database
from personal_assistant_db.testing import plain_url, started_database

SLOW = sa.text("SELECT pg_sleep(30)")


@asynccontextmanager
async def sampled(url: str, app: str) -> AsyncIterator[Callable[[], list[int]]]:
    """Count this app's server backends every few milliseconds while the block runs."""
    conn = await asyncpg.connect(plain_url(url))
    counts: list[int] = []
    running = True

    async def sample() -> None:
        while running:
            counts.append(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app
                )
            )
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        yield lambda: counts
    finally:
        running = False
        await sampler
        await conn.close()


async def _running(url: str, app: str, count: int) -> None:
    """Wait until ``count`` of this app's backends are running ``pg_sleep``."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        for _ in range(500):
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                " AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
                app,
            )
            if running >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {running} of {count} statements started")
    finally:
        await conn.close()


async def _active(url: str, app: str) -> list[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        for _ in range(200):  # settling takes a round trip or two
            rows = await conn.fetch(
                "SELECT query FROM pg_stat_activity WHERE application_name = $1"
                " AND state <> 'idle'",
                app,
            )
            if not rows:
                return []
            await asyncio.sleep(0.02)
        return [r["query"] for r in rows]
    finally:
        await conn.close()


def _capacity(db: Database) -> int:
    return db.settings.pool_size + max(0, db.settings.max_overflow)


async def test_a_thousand_cancellations_in_waves_of_fifty_never_exceed_the_pool(
    make_database: object,
) -> None:
    url = make_database()  # type: ignore[operator]
    app = f"pa-cancel-{uuid.uuid4().hex[:8]}"
    env = {
        "DB_POOL_SIZE": "20",
        "DB_MAX_OVERFLOW": "0",
        "DB_WARMUP_CONNECTIONS": "20",
        "DB_APPLICATION_NAME": app,
    }
    async with started_database(url, **env) as db, sampled(url, app) as counts:
        cancelled = 0
        for _ in range(20):
            tasks = [asyncio.create_task(db.fetch_val(SLOW)) for _ in range(50)]
            await _running(url, app, 20)  # 20 run on the server, 30 wait for the pool
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            cancelled += sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert cancelled == 1000
        assert await _active(url, app) == []
        await db.fast_path.drain()
        assert db.pool_stats().used == 0
        assert await db.fetch_val(sa.text("SELECT 41 + 1")) == 42
        seen = counts()
    assert len(seen) > 20
    assert max(seen) <= _capacity(db) + 1, max(seen)


async def test_a_timeout_stops_the_statement_and_the_connection_is_reused(
    make_database: object,
) -> None:
    url = make_database()  # type: ignore[operator]
    app = f"pa-cancel-{uuid.uuid4().hex[:8]}"
    env = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "0", "DB_APPLICATION_NAME": app}
    async with started_database(url, **env) as db, sampled(url, app) as counts:
        pids = set()
        for _ in range(30):
            try:
                async with asyncio.timeout(0.1):
                    await db.fetch_val(SLOW)
            except TimeoutError:
                pass
            pids.add(await db.fetch_val(sa.text("SELECT pg_backend_pid()")))
        assert await _active(url, app) == []
        await db.fast_path.drain()
        assert db.pool_stats().used == 0
        seen = counts()
    assert max(seen) <= _capacity(db) + 1, max(seen)
    assert len(pids) <= _capacity(db)  # returned clean and reused, not replaced per timeout
