"""On the wire, on a throwaway server: one round trip per fast-path statement, the ping bypass
window both ways, and reads (never writes) retried across a restart."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from personal_assistant_db import Database
from personal_assistant_db.failures import is_disconnect
from personal_assistant_db.testing import ThrowawayServer

SELECT = sa.text("SELECT :n + 1")


@pytest.fixture
def logged_server(throwaway_server: ThrowawayServer) -> ThrowawayServer:
    """The throwaway server with ``log_statement = 'all'``."""
    with psycopg.connect(throwaway_server.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
    return throwaway_server


class ServerLog:
    def __init__(self, server: ThrowawayServer) -> None:
        self.path = server.base / "log"
        self.mark = 0

    def start(self) -> None:
        self.mark = len(self.path.read_text().splitlines())

    async def lines(self) -> list[str]:
        await asyncio.sleep(0.2)  # the server writes its log asynchronously
        new = self.path.read_text().splitlines()[self.mark :]
        return [line.split("LOG:  ", 1)[1] for line in new if "LOG:  " in line]


def production(server: ThrowawayServer, **env: str) -> Database:
    return Database.from_env(
        {
            "DATABASE_URL": server.url,
            "DB_ENV": "production",
            "DB_POOL_SIZE": "2",
            "DB_WARMUP_CONNECTIONS": "2",
            **env,
        }
    )


async def count_writes(db: Database) -> list[int]:
    """Count socket writes (a round trip is one) on both pooled connections from now on."""
    writes = [0]
    async with db.connect() as one, db.connect() as two:
        for conn in (one, two):
            raw = await conn.get_raw_connection()
            transport: Any = raw.driver_connection._transport  # type: ignore[union-attr]
            original = transport.write

            def write(data: Any, original: Any = original) -> None:
                writes[0] += 1
                original(data)

            transport.write = write
    writes[0] = 0
    return writes


async def test_a_fast_path_statement_is_one_round_trip(logged_server: ThrowawayServer) -> None:
    db = production(logged_server)
    await db.start()
    log = ServerLog(logged_server)
    try:
        for n in range(4):  # prepare the statement on both pooled connections
            await asyncio.gather(db.fetch_val(SELECT, {"n": n}), db.fetch_val(SELECT, {"n": n}))
        writes = await count_writes(db)
        log.start()
        for n in range(50):
            assert await db.fetch_val(SELECT, {"n": n}) == n + 1
        assert writes[0] == 50
        lines = await log.lines()
        assert len(lines) == 50
        assert all(
            line.startswith("execute ") and line.endswith(": SELECT $1 + 1") for line in lines
        )
        # db.connect() in the production profile: BEGIN, the query, ROLLBACK, and no ping
        writes = await count_writes(db)
        log.start()
        for _ in range(20):
            async with db.connect() as conn:
                await conn.execute(SELECT, {"n": 1})
        assert writes[0] == 60
        statements = [line.split(": ", 1)[-1] for line in await log.lines()]
        assert statements == ["BEGIN;", "SELECT $1 + 1", "ROLLBACK;"] * 20
    finally:
        await db.stop()


async def test_ping_bypass_under_load_and_ping_plus_reconnect_after_restart(
    logged_server: ThrowawayServer,
) -> None:
    db = production(logged_server)
    await db.start()
    log = ServerLog(logged_server)
    try:
        pings = [0]
        dialect = db.engine.sync_engine.dialect
        original = dialect.do_ping

        def ping(dbapi_connection: Any) -> bool:
            pings[0] += 1
            return bool(original(dbapi_connection))

        dialect.do_ping = ping  # type: ignore[method-assign]
        log.start()

        async def steady(n: int) -> None:
            for _ in range(n):
                async with db.connect() as conn:
                    await conn.execute(SELECT, {"n": 1})
                await db.fetch_val(SELECT, {"n": 2})

        await asyncio.gather(*(steady(100) for _ in range(4)))
        assert pings[0] == 0
        begins = sum(1 for line in await log.lines() if line.endswith("BEGIN;"))
        assert begins == 400  # one per db.connect(): no BEGIN/ROLLBACK pair for a ping

        created = db.pool_stats().created
        await asyncio.to_thread(logged_server.restart)
        await asyncio.sleep(0.6)  # idle for longer than the window: the next checkout pings
        async with db.connect() as conn:
            assert (await conn.execute(SELECT, {"n": 41})).scalar() == 42
        assert pings[0] >= 1
        assert await db.fetch_val(SELECT, {"n": 1}) == 2
        stats = db.pool_stats()
        assert stats.created > created
        assert stats.read_retries == 0  # the ping replaced the dead connection, not a retry
    finally:
        await db.stop()


async def test_reads_are_retried_after_a_restart_and_writes_are_not(
    throwaway_server: ThrowawayServer,
) -> None:
    # A long bypass window hands the dead connections out without a ping, so the statements
    # themselves meet the disconnect.
    db = production(throwaway_server, DB_POOL_PING_BYPASS_MS="600000")
    await db.start()
    try:
        await db.execute(sa.text("CREATE TABLE IF NOT EXISTS t (n int)"))
        await asyncio.gather(db.fetch_val(SELECT, {"n": 0}), db.fetch_val(SELECT, {"n": 0}))
        await asyncio.to_thread(throwaway_server.restart)
        with pytest.raises(DBAPIError) as caught:
            await db.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert caught.value.connection_invalidated
        assert db.pool_stats().read_retries == 0
        assert await db.fetch_val(sa.text("SELECT count(*) FROM t")) == 0
        await asyncio.gather(db.fetch_val(SELECT, {"n": 0}), db.fetch_val(SELECT, {"n": 0}))

        # under load, across a restart: no read fails, and the retries are counted
        stop = asyncio.Event()
        failures: list[BaseException] = []
        served = [0]

        async def reader() -> None:
            while not stop.is_set():
                try:
                    assert await db.fetch_val(SELECT, {"n": 1}) == 2
                    served[0] += 1
                except DBAPIError as exc:
                    failures.append(exc)
                await asyncio.sleep(0.005)

        readers = [asyncio.create_task(reader()) for _ in range(6)]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(throwaway_server.restart)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*readers)
        assert failures == []
        assert served[0] > 0
        assert db.pool_stats().read_retries > 0
        assert db.pool_stats().used == 0
    finally:
        await db.stop()


async def test_no_retry_without_budget(throwaway_server: ThrowawayServer) -> None:
    db = production(throwaway_server, DB_POOL_PING_BYPASS_MS="600000", DB_READ_RETRY_BUDGET_MS="0")
    await db.start()
    try:
        await asyncio.gather(db.fetch_val(SELECT, {"n": 0}), db.fetch_val(SELECT, {"n": 0}))
        await asyncio.to_thread(throwaway_server.restart)
        with pytest.raises(DBAPIError):
            await db.fetch_val(SELECT, {"n": 0})
        assert db.pool_stats().read_retries == 0
        with contextlib.suppress(DBAPIError):
            await db.fetch_val(SELECT, {"n": 0})  # the other dead connection
        assert await db.fetch_val(SELECT, {"n": 0}) == 1  # the pool was invalidated: new ones
    finally:
        await db.stop()


def test_restart_errors_from_the_driver_count_as_disconnects() -> None:
    busy = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert is_disconnect(busy)
    assert is_disconnect(asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"))
    assert is_disconnect(ConnectionResetError())
    assert not is_disconnect(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not is_disconnect(asyncpg.exceptions.InternalClientError("some other bug"))


async def test_a_transaction_that_loses_its_connection_raises_the_blocks_error(
    throwaway_server: ThrowawayServer,
) -> None:
    db = production(throwaway_server)
    await db.start()
    try:

        async def block() -> None:
            async with db.transaction() as tx:
                await tx.execute(sa.text("SELECT 1"))
                await asyncio.to_thread(throwaway_server.restart)
                await tx.execute(sa.text("SELECT 2"))

        with pytest.raises(DBAPIError) as caught:
            await block()
        assert caught.value.connection_invalidated
        assert "SELECT 2" in str(caught.value)  # the block's error, not the failed ROLLBACK
        assert db.pool_stats().used == 0
        assert await db.fetch_val(sa.text("SELECT 3")) == 3
    finally:
        await db.stop()
