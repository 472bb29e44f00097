"""Client-side bounds against a frozen backend (SIGSTOP): statement_timeout cannot fire there.

With ``DB_COMMAND_TIMEOUT`` the query ends after the command timeout, not after the command
timeout *plus* a ROLLBACK on the same frozen backend (FIELD_NOTES: ~4.1 s for a 2 s timeout) or
SQLAlchemy's 2 s graceful close: the timed-out connection is discarded at once. The bounded
pre-ping (``DB_PING_TIMEOUT``) steps over a frozen idle connection to a fresh one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import sqlalchemy.exc
from sqlalchemy import text
from test_health_frozen import app_backends, frozen

from personal_assistant_db import Database
from personal_assistant_db.failures import unavailable_cause
from personal_assistant_db.testing import started_database


async def settle_server(db: Database, url: str) -> int:
    """Server sessions of the app once they equal ``open`` (a thawed backend exits a moment
    after it sees its closed socket)."""
    count = -1
    for _ in range(60):
        count = len(app_backends(db, url))
        if count == db.pool_stats().open:
            break
        await asyncio.sleep(0.1)
    return count


async def test_a_frozen_query_ends_at_the_command_timeout_and_the_connection_is_discarded(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    env = {"DB_COMMAND_TIMEOUT": "1", "DB_POOL_SIZE": "2", "DB_WARMUP_CONNECTIONS": "2"}
    async with started_database(url, **env) as db:
        assert db.pool_stats().open == 2
        before = db.pool_stats()
        with frozen(app_backends(db, url)):
            began = time.perf_counter()
            with pytest.raises(TimeoutError) as caught:
                async with db.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            took = time.perf_counter() - began
            # 1 s command timeout; the old path (ROLLBACK on the frozen backend, then a 2 s
            # graceful close) took >= 3 x that. Margin for a loaded machine: 2.5 x.
            assert took < 2.5 * db.settings.command_timeout, took
            assert unavailable_cause(caught.value) == "timeout"
            stats = db.pool_stats()
            assert stats.used == 0
            assert stats.invalidated == before.invalidated + 1
            assert stats.open == 1  # the discarded one is gone; the other (frozen) is idle
        assert await settle_server(db, url) == db.pool_stats().open


async def test_the_bounded_pre_ping_steps_over_a_frozen_idle_connection(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    env = {
        "DB_POOL_PRE_PING": "true",
        "DB_PING_TIMEOUT": "0.5",
        "DB_POOL_PING_BYPASS_MS": "0",  # ping every checkout (the warm-up just returned it)
        "DB_COMMAND_TIMEOUT": "30",  # far away: only the ping's own bound may act here
        "DB_POOL_SIZE": "1",
        "DB_WARMUP_CONNECTIONS": "1",
    }
    async with started_database(url, **env) as db:
        before = db.pool_stats()
        with frozen(app_backends(db, url)):
            began = time.perf_counter()
            async with db.connect() as conn:  # the ping times out; a fresh connection serves
                value = (await conn.exec_driver_sql("SELECT 41 + 1")).scalar()
            took = time.perf_counter() - began
            assert value == 42
            # the 0.5 s ping bound + a new connection, not the 30 s command timeout
            assert took < db.settings.command_timeout / 4, took
            stats = db.pool_stats()
            assert stats.invalidated == before.invalidated + 1
            assert stats.reconnects == before.reconnects + 1
            assert stats.used == 0 and stats.open == 1
        assert await settle_server(db, url) == 1


async def test_a_frozen_fast_path_read_ends_at_the_command_timeout_and_is_discarded(
    make_database: Callable[[], str],
) -> None:
    """The fast path runs on the driver connection, outside SQLAlchemy's error hook: a command
    timeout there must discard the connection too, or the next read would wait on it again."""
    url = make_database()
    env = {"DB_COMMAND_TIMEOUT": "1", "DB_POOL_SIZE": "1", "DB_WARMUP_CONNECTIONS": "1"}
    async with started_database(url, **env) as db:
        assert await db.fetch_val(text("SELECT 1")) == 1
        with frozen(app_backends(db, url)):
            began = time.perf_counter()
            with pytest.raises(sqlalchemy.exc.StatementError) as caught:
                await db.fetch_val(text("SELECT 2"))
            assert time.perf_counter() - began < 1.9
            assert unavailable_cause(caught.value) == "timeout"
            assert db.pool_stats().open == 0  # discarded, not back in the pool
            began = time.perf_counter()
            assert await db.fetch_val(text("SELECT 3")) == 3  # a fresh backend serves
            assert time.perf_counter() - began < 1.0
        assert await settle_server(db, url) == db.pool_stats().open
