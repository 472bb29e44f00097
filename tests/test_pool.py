"""PoolStats are exact on a real pool: compared with pg_stat_activity under 50 concurrent tasks."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
import sqlalchemy.exc
from structlog.testing import capture_logs

from personal_assistant_db import Database
from personal_assistant_db.testing import ThrowawayServer, plain_url


def server_count(database_url: str, app_name: str) -> int:
    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def hold(db: Database, release: asyncio.Event, holding: list[int]) -> None:
    async with db.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
        holding.append(1)
        await release.wait()


async def settle(holding: list[int], count: int) -> None:
    for _ in range(500):
        if len(holding) == count:
            await asyncio.sleep(0.05)  # let the rest reach their wait on the pool queue
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(holding)} of {count} tasks got a connection")


@pytest.mark.parametrize(("size", "overflow"), [(20, 30), (10, 5)])
async def test_counts_match_the_server_under_50_tasks(
    test_env: dict[str, str], database_url: str, size: int, overflow: int
) -> None:
    app_name = f"pa-pool-{uuid.uuid4().hex[:8]}"
    db = Database.from_env(
        test_env,
        pool_size=size,
        max_overflow=overflow,
        application_name=app_name,
        pool_timeout=10.0,
    )
    await db.start()
    release = asyncio.Event()
    holding: list[int] = []
    tasks = [asyncio.create_task(hold(db, release, holding)) for _ in range(50)]
    try:
        capacity = size + overflow
        await settle(holding, min(50, capacity))
        stats = db.pool_stats()
        assert stats.used == min(50, capacity)
        assert stats.waiting == 50 - stats.used
        assert stats.overflow_in_use == max(0, stats.used - size)
        assert stats.overflow_in_use >= 0
        assert stats.open == server_count(database_url, app_name)
        assert stats.utilization == stats.used / capacity
    finally:
        release.set()
        await asyncio.gather(*tasks)
    stats = db.pool_stats()
    assert stats.used == 0 and stats.waiting == 0
    assert stats.checkouts == 51  # 50 tasks + the startup probe
    assert stats.reused_checkouts == stats.checkouts - stats.created  # every new one was fresh
    assert stats.idle == server_count(database_url, app_name)
    assert stats.created - stats.closed == stats.idle
    await db.stop()
    assert server_count(database_url, app_name) == 0


async def test_efficiency_under_steady_load_is_reuse(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env, pool_size=4, max_overflow=0, warmup_connections=4)
    await db.start()
    try:

        async def worker() -> None:
            for _ in range(100):
                async with db.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")

        await asyncio.gather(*(worker() for _ in range(4)))
        stats = db.pool_stats()
        assert stats.created == 4  # warm-up opened them all; load opened none
        assert stats.checkouts == 400 + 1 + 4  # load + startup probe + warm-up
        # The probe opened one connection and warm-up three more: those are the fresh checkouts.
        assert stats.reused_checkouts == stats.checkouts - stats.created
        assert stats.efficiency == (405 - 4) / 405
    finally:
        await db.stop()


async def test_pool_timeout_is_counted_and_logged_with_a_snapshot(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env, pool_size=1, max_overflow=0, pool_timeout=0.2)
    await db.start()
    try:
        async with db.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            with capture_logs() as logs, pytest.raises(sqlalchemy.exc.TimeoutError):
                async with db.connect():
                    pass
        assert db.pool_stats().timeouts == 1
        [event] = [e for e in logs if e["event"] == "db.pool.timeout"]
        assert event["used"] == 1 and event["size"] == 1 and event["timeouts"] == 1
        assert event["wait_max"] >= 0.2
    finally:
        await db.stop()


async def test_stats_survive_dispose(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env)
    await db.start()
    try:
        before = db.pool_stats().checkouts
        await db.engine.dispose()  # replaces the pool object
        async with db.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        after = db.pool_stats()
        assert after.checkouts == before + 1
        assert after.idle == 1
    finally:
        await db.stop()


async def test_pool_timeouts_log_one_line_per_interval_with_a_count(
    test_env: dict[str, str],
) -> None:
    db = Database.from_env(
        test_env, pool_size=1, max_overflow=0, pool_timeout=0.05, error_log_interval=60.0
    )
    await db.start()
    try:
        async with db.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            with capture_logs() as logs:
                for _ in range(5):
                    with pytest.raises(sqlalchemy.exc.TimeoutError):
                        async with db.connect():
                            pass
        assert db.pool_stats().timeouts == 5
        lines = [e for e in logs if e["event"] == "db.pool.timeout"]
        assert len(lines) == 1 and lines[0]["count"] == 1  # the rest wait for the next interval
        assert db.meter.timeouts_within(60) == 5
    finally:
        await db.stop()


def app_sessions(database_url: str, app_name: str) -> dict[str, int]:
    """pg_stat_activity of one application: sessions by state."""
    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity "
            "WHERE application_name = %s GROUP BY 1",
            (app_name,),
        ).fetchall()
    return {str(state): int(n) for state, n in rows}


async def wait_for_server(database_url: str, app_name: str, expected: int) -> int:
    """The server's count, once it settles on ``expected`` (a backend ends a moment after its
    client closed the socket)."""
    count = -1
    for _ in range(100):
        count = sum(app_sessions(database_url, app_name).values())
        if count == expected:
            return count
        await asyncio.sleep(0.05)
    return count


async def test_idle_and_open_count_live_connections_after_cancellations(
    test_env: dict[str, str], database_url: str
) -> None:
    """Each cancelled query invalidates its connection: the slot goes back empty. Before the
    fix ``idle``/``open`` counted those slots (idle 10, open 10, server 0)."""
    app_name = f"pa-cancel-{uuid.uuid4().hex[:8]}"
    db = Database.from_env(test_env, pool_size=10, max_overflow=0, application_name=app_name)
    await db.start()
    try:

        async def slow() -> None:
            async with db.connect() as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(5)")

        for _ in range(10):  # 10 rounds of 10 concurrent cancelled queries = 100
            tasks = [asyncio.create_task(slow()) for _ in range(10)]
            await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        stats = db.pool_stats()
        assert stats.used == 0
        assert stats.invalidated > 0  # (a task cancelled while still connecting has none)
        assert stats.open == stats.idle == stats.created - stats.closed
        assert await wait_for_server(database_url, app_name, stats.open) == stats.open
        assert "idle in transaction" not in app_sessions(database_url, app_name)
        # The next checkouts reopen the empty slots: counted as reconnects.
        async with db.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        after = db.pool_stats()
        assert after.reconnects >= 1
        assert after.open == await wait_for_server(database_url, app_name, after.open)
    finally:
        await db.stop()


async def test_accounting_matches_the_server_after_a_restart(
    throwaway_server: ThrowawayServer,
) -> None:
    db = Database.from_env(
        {"DATABASE_URL": throwaway_server.url, "DB_ENV": "test"},
        pool_size=4,
        pool_pre_ping=True,
        pool_ping_bypass_ms=0,  # ping every checkout: the warm-up returned them a moment ago
        warmup_connections=4,
    )
    await db.start()
    try:
        assert db.pool_stats().open == 4
        await asyncio.to_thread(throwaway_server.restart)
        before = db.pool_stats()
        # Every pooled connection is dead now; the pre-ping finds out on checkout.
        for _ in range(4):
            async with db.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        stats = db.pool_stats()
        assert stats.invalidated > before.invalidated
        assert stats.reconnects >= 1
        assert stats.used == 0
        assert stats.open == stats.created - stats.closed
        server = await wait_for_server(
            throwaway_server.url, db.settings.application_name, stats.open
        )
        assert stats.open == server
    finally:
        await db.stop()
