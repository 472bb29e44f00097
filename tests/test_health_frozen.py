"""A frozen backend (SIGSTOP): statement_timeout cannot fire; the probe must not pile up.

The backends of the app's pool are stopped with SIGSTOP (the server runs on this machine; the test
skips when it cannot signal them), so a probe's query hangs with no server-side timeout. Checks:
every probe still answers within the deadline, at most the one abandoned probe holds a connection
(no pile-up), the next probe aborts the stuck one's socket so the check passes again on a fresh
connection while the old backend is still frozen (even with no driver timeout at all), and after
SIGCONT nothing is leaked. With DB_COMMAND_TIMEOUT set, the driver also ends it on its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import psycopg
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import Database


def app_backends(db: Database, url: str) -> list[int]:
    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            (db.settings.application_name, database),
        ).fetchall()
    return [int(r[0]) for r in rows]


@contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    try:
        for pid in pids:
            os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        pytest.skip("the PostgreSQL backends are not processes this test can signal")
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@asynccontextmanager
async def serving(url: str, **env: str) -> AsyncIterator[tuple[Database, httpx.AsyncClient]]:
    db = Database.from_env(
        {"DATABASE_URL": url, "DB_ENV": "test", "DB_HEALTH_TTL": "0", "DB_HEALTH_FAIL_TTL": "0"}
        | env
    )
    await db.start()
    host = Starlette(routes=[Mount("/health", app=db.health_app())])
    transport = httpx.ASGITransport(app=host)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield db, c
    finally:
        await db.stop()


async def probes(db: Database, c: httpx.AsyncClient, n: int) -> list[tuple[int, float, int]]:
    """n sequential /health/database probes: (status code, seconds, connections in use)."""
    out = []
    for _ in range(n):
        began = time.perf_counter()
        r = await c.get("/health/database")
        out.append((r.status_code, time.perf_counter() - began, db.pool_stats().used))
        await asyncio.sleep(0.2)
    return out


async def test_a_stuck_probe_is_aborted_by_the_next_so_the_check_recovers_while_frozen(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    async with serving(url, DB_COMMAND_TIMEOUT="0") as (db, c):  # no driver bound at all
        assert (await c.get("/health/ready")).status_code == 200
        with frozen(app_backends(db, url)):
            seen = await probes(db, c, 10)
            assert seen[0][0] == 503  # the probe on the frozen backend misses its deadline
            assert seen[-1][0] == 200  # a fresh connection, while the old backend is frozen
            assert max(took for _, took, _ in seen) < db.settings.health_timeout
            assert max(used for _, _, used in seen) <= 1  # the one stuck probe, no pile-up
        began = time.perf_counter()
        while (await c.get("/health/ready")).status_code != 200:
            assert time.perf_counter() - began < 2.0, "readiness did not come back after SIGCONT"
            await asyncio.sleep(0.05)
        assert db.pool_stats().used == 0
        assert len(app_backends(db, url)) == db.pool_stats().open


async def test_with_a_command_timeout_the_driver_frees_the_probe_while_still_frozen(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    async with serving(url, DB_COMMAND_TIMEOUT="1") as (db, c):
        assert (await c.get("/health/ready")).status_code == 200
        with frozen(app_backends(db, url)):
            seen = await probes(db, c, 15)  # ~3 s: the driver gives up on the query after 1 s
            assert max(took for _, took, _ in seen) < db.settings.health_timeout
            assert seen[0][0] == 503
            assert seen[-1][0] == 200  # a fresh connection to a live backend
            assert max(used for _, _, used in seen) <= 1
        # The invalidated connection's backend exits once it runs again and sees the closed socket.
        began = time.perf_counter()
        while len(app_backends(db, url)) != db.pool_stats().open:
            assert time.perf_counter() - began < 3.0, "a backend outlived its connection"
            await asyncio.sleep(0.1)
        assert db.pool_stats().used == 0
