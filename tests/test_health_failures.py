"""The /health mount when things go wrong, on real servers (no mocks).

Exhausted pool (deadline, no leaks), a probe past its deadline (server-side timeout, no leak),
single-flight under 500 concurrent requests (counted by pg_stat_statements), readiness following
a throwaway server that stops and restarts, and canary secrets across every failure mode.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.routing import Mount
from structlog.testing import capture_logs

from personal_assistant_db import Database
from personal_assistant_db.health.checks import CheckResult, GuardedProbe
from personal_assistant_db.testing import ThrowawayServer, plain_url
from personal_assistant_db.testing import started_database as started

CANARY_PW = "canaryPw7f3a9q"
CANARY_HOST = "pa-canary-host-7f3a9q.invalid"
TOKEN = "t0ken-for-health-details-1234"
CAUSES: dict[str, set[str]] = {}  # mode -> "reason/error_class" seen in the log
ROUTES = [
    "/health/",
    "/health/live",
    "/health/ready",
    "/health/database",
    "/health/pool",
    "/health/dashboard",
]


@asynccontextmanager
async def client(health: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    host = Starlette(routes=[Mount("/health", app=health)])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
        yield c


def backends(db: Database, suffix: str = "") -> int:
    """Server-side connections of this app (pg_stat_activity, by application_name and db);
    ``suffix="/health"`` counts the health probe's reserved connection instead."""
    url = db.settings.url
    with psycopg.connect(plain_url(url.render_as_string(hide_password=False))) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            (db.settings.application_name + suffix, url.database),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def settle(db: Database) -> None:
    for _ in range(50):
        if db.pool_stats().used == 0:
            return
        await asyncio.sleep(0.1)


async def test_exhausted_pool_is_ready_with_a_reason_and_still_probes_the_database(
    make_database: Callable[[], str],
) -> None:
    """Saturation is load, not failure: ready 200 (``warn`` with its reason), and the database
    probe still runs, on the reserved connection, not queued behind the pool's 30 s wait."""
    # pool_timeout=30: a probe that went through the pool's own wait would take 30 s (or, with
    # the health checkout wait, fail). The health deadline is a sixth of that: 200 concurrent
    # requests on a loaded 2-core machine can take over the 0.8 s default to be *served*, which
    # is CPU, not the behaviour under test.
    async with (
        started(
            make_database(),
            DB_POOL_TIMEOUT="30",
            DB_HEALTH_TIMEOUT="5",
            DB_HEALTH_CHECKOUT_TIMEOUT="1",
        ) as db,
        AsyncExitStack() as held,
    ):
        conns = [await held.enter_async_context(db.connect()) for _ in range(db.settings.pool_size)]
        for conn in conns:
            await conn.exec_driver_sql("SELECT 1")
        assert db.pool_stats().used == db.pool_stats().capacity
        async with client(db.health_app()) as c:

            async def probe(path: str) -> tuple[int, float, dict[str, Any]]:
                began = time.perf_counter()
                r = await c.get(path)
                return r.status_code, time.perf_counter() - began, r.json()

            paths = ["/health/ready", "/health/database"] * 100
            answers = await asyncio.gather(*(probe(p) for p in paths))
            # Not queued behind the pool: well under its 30 s wait (a ratio, not a latency).
            assert max(took for _, took, _ in answers) < db.settings.pool_timeout / 4
            ready = [a for p, a in zip(paths, answers, strict=True) if p == "/health/ready"]
            assert {code for code, _, _ in ready} == {200}
            pool = ready[0][2]["checks"]["pool:utilization"][0]
            assert pool["status"] == "warn"
            assert pool["output"].startswith("pool saturated: all 5 connections in use")
            database = [a for p, a in zip(paths, answers, strict=True) if p == "/health/database"]
            assert {body["status"] for _, _, body in database} == {"pass"}  # probed, not skipped
            assert backends(db, "/health") == 1  # the reserved connection, one for all probes
            text = await c.get("/health/ready?format=text")
            assert "[+]pool:utilization warn: pool saturated" in text.text
            await held.aclose()
            await settle(db)
            await asyncio.sleep(db.settings.health_ttl)
            assert (await c.get("/health/database")).status_code == 200  # through the pool again
        stats = db.pool_stats()
        assert stats.used == 0
        assert backends(db) == stats.open <= stats.capacity
        assert backends(db, "/health") == 0  # given back once the pool had room


async def test_a_probe_past_its_deadline_is_abandoned_not_leaked(
    make_database: Callable[[], str],
) -> None:
    query_s = 3.0

    async def slow(conn: AsyncConnection) -> Any:
        return (await conn.exec_driver_sql(f"SELECT pg_sleep({query_s})")).scalar()

    async with started(make_database()) as db:
        probe = GuardedProbe(db, statement_timeout=0.3)
        began = time.perf_counter()
        outcome = await probe.run("slow:query", slow, checkout_timeout=0.2, deadline=0.25)
        # Abandoned at its deadline, not waited for: well under the query's own 3 s.
        assert time.perf_counter() - began < query_s / 4
        assert isinstance(outcome, CheckResult) and outcome.status == "fail"
        assert outcome.details["reason"] == "deadline exceeded"
        # The server's statement_timeout ends the query; the connection comes back to the pool.
        await settle(db)
        assert db.pool_stats().used == 0
        assert backends(db) == db.pool_stats().open
        again = await probe.run("slow:query", slow, checkout_timeout=0.2, deadline=0.25)
        assert isinstance(again, CheckResult)  # a fresh probe could run: none was left in flight


async def statement_calls(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query ILIKE 'SELECT current_setting(%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_500_concurrent_probes_cost_one_query_per_ttl(
    throwaway_server: ThrowawayServer,
) -> None:
    if not throwaway_server.has_pg_stat_statements:
        pytest.skip("this PostgreSQL build lacks pg_stat_statements")
    url = throwaway_server.url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    # What this proves is the query count, not latency: the deadlines are generous so that 500
    # requests sharing one event loop on a loaded machine do not turn the one flight's answer
    # into "deadline exceeded" (503) for all who joined it.
    async with (
        started(
            url, DB_HEALTH_TTL="1.0", DB_HEALTH_TIMEOUT="10", DB_HEALTH_CHECKOUT_TIMEOUT="5"
        ) as db,
        client(db.health_app()) as c,
    ):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
        answers = await asyncio.gather(*(c.get("/health/ready") for _ in range(500)))
        assert {r.status_code for r in answers} == {200}
        assert await statement_calls(url) == 1
        # Sustained load for ~2.5 s: at most one query per TTL (plus the one at the edge).
        began = time.perf_counter()

        async def worker() -> int:
            n = 0
            while time.perf_counter() - began < 2.5:
                r = await c.get("/health/database")
                assert r.status_code == 200
                n += 1
            return n

        served = sum(await asyncio.gather(*(worker() for _ in range(16))))
        elapsed = time.perf_counter() - began
        calls = await statement_calls(url)
        assert served > 100
        assert 1 <= calls <= 1 + math.ceil(elapsed / db.settings.health_ttl) + 1


async def poll(c: httpx.AsyncClient, path: str, code: int, limit: float) -> float:
    began = time.perf_counter()
    while True:
        r = await c.get(path)
        if r.status_code == code:
            return time.perf_counter() - began
        assert time.perf_counter() - began < limit, f"{path} never became {code}: {r.text}"
        await asyncio.sleep(0.05)


async def test_readiness_follows_the_server_and_liveness_does_not(
    throwaway_server: ThrowawayServer,
) -> None:
    async with started(throwaway_server.url) as db, client(db.health_app()) as c:
        s = db.settings
        assert (await c.get("/health/ready")).status_code == 200
        await asyncio.to_thread(throwaway_server.stop)
        went_down = await poll(c, "/health/ready", 503, limit=10)
        assert went_down <= s.health_ttl + s.health_timeout + 0.3
        assert (await c.get("/health/live")).status_code == 200
        assert (await c.get("/health/")).status_code == 503
        await asyncio.to_thread(throwaway_server.start)
        came_back = await poll(c, "/health/ready", 200, limit=10)
        assert came_back <= s.health_fail_ttl + s.health_timeout + 0.3
        assert (await c.get("/health/live")).status_code == 200


async def blackhole(writers: list[asyncio.StreamWriter]) -> tuple[asyncio.Server, int]:
    """A TCP listener that accepts and never answers: a database that hangs."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def fetch_everything(c: httpx.AsyncClient) -> list[httpx.Response]:
    responses = []
    for path in ROUTES:
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            for params in ({}, {"format": "text"}):
                responses.append(await c.get(path, headers=headers, params=params))
                responses.append(await c.head(path, headers=headers))
    return responses


def assert_no_canary(responses: list[httpx.Response]) -> None:
    for r in responses:
        blob = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for secret in (CANARY_PW, CANARY_HOST, "127.0.0.1", "postgres"):
            assert secret not in blob, (r.request.url, secret)
        for leak in ("Error", "refused", "password authentication"):
            assert leak not in r.text or '"error_class"' in r.text, (r.request.url, leak)


async def run_mode(
    mode: str, url: str, then: Callable[[Database], Any] | None = None, **env: str
) -> list[httpx.Response]:
    """Start (degraded, so a dead target still starts), run ``then``, probe every route."""
    env = {
        "DB_HEALTH_TOKEN": TOKEN,
        "DB_STARTUP_MODE": "degraded",
        "DB_HEALTH_FAIL_TTL": "0",
        "DB_CONNECT_TIMEOUT": "1",
        "DB_CONNECT_RETRY_DEADLINE": "0.5",
        **env,
    }
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test", **env})
    await db.start()
    try:
        if then is not None:
            then(db)
        async with client(db.health_app()) as c:
            with capture_logs() as logs:
                responses = await fetch_everything(c)
        ids = {
            e["errorId"]
            for r in responses
            if r.headers["content-type"] == "application/health+json" and r.content
            for entries in r.json()["checks"].values()
            for e in entries
            if "errorId" in e
        }
        failed = [e for e in logs if e["event"] == "health.check.failed"]
        assert ids <= {e["error_id"] for e in failed}  # each public id leads to a logged cause
        CAUSES.setdefault(mode, set()).update(f"{e['reason']}/{e['error_class']}" for e in failed)
        return responses
    finally:
        await db.stop()


async def test_canary_secrets_never_leak_in_any_failure_mode(
    postgres_bindir: Path | None,
) -> None:
    seen: dict[str, set[int]] = {}
    server = ThrowawayServer(password=CANARY_PW, bindir=postgres_bindir)
    server.start()
    try:
        admin = f"postgresql://postgres@/postgres?host={server.base}&port={server.port}"

        # 1. bad password: the password changes under the app and its connections die.
        def rotate(db: Database) -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("ALTER ROLE postgres PASSWORD 'rotated-elsewhere'")
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (db.settings.application_name,),
                )

        responses = await run_mode("bad password", server.url, rotate)
        seen["bad password"] = {r.status_code for r in responses}
        assert_no_canary(responses)
        # 2. pool exhausted (right password again).
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE postgres PASSWORD '{CANARY_PW}'")
        db = Database.from_env({"DATABASE_URL": server.url, "DB_ENV": "test"})
        await db.start()
        try:
            async with AsyncExitStack() as held:
                for _ in range(db.settings.pool_size):
                    conn_ = await held.enter_async_context(db.connect())
                    await conn_.exec_driver_sql("SELECT 1")
                async with client(db.health_app()) as c:
                    responses = await fetch_everything(c)
            seen["pool exhausted"] = {r.status_code for r in responses}
            assert_no_canary(responses)
        finally:
            await db.stop()
        # 3. server down.
        server.stop()
        responses = await run_mode("server down", server.url)
        seen["server down"] = {r.status_code for r in responses}
        assert_no_canary(responses)
    finally:
        server.cleanup()
    # 4. timeout: a server that accepts and never answers.
    writers: list[asyncio.StreamWriter] = []
    hole, port = await blackhole(writers)
    try:
        responses = await run_mode(
            "timeout", f"postgresql://postgres:{CANARY_PW}@127.0.0.1:{port}/postgres"
        )
        seen["timeout"] = {r.status_code for r in responses}
        assert_no_canary(responses)
    finally:
        for writer in writers:
            writer.close()
        hole.close()
        await hole.wait_closed()
    # 5. unresolvable host name.
    responses = await run_mode(
        "no such host", f"postgresql://postgres:{CANARY_PW}@{CANARY_HOST}:5432/postgres"
    )
    seen["no such host"] = {r.status_code for r in responses}
    assert_no_canary(responses)
    # Each mode really failed the way it claims (the real cause is in the log, not the body).
    assert "probe failed/InvalidPasswordError" in CAUSES["bad password"]
    assert "probe failed/ConnectionRefusedError" in CAUSES["server down"]
    assert "no connection within the checkout wait/CheckoutWaitExceeded" in CAUSES["timeout"]
    assert "probe failed/gaierror" in CAUSES["no such host"]
    assert seen.pop("pool exhausted") == {200}  # saturated is ready (warn), never a failure
    for mode, codes in seen.items():
        assert 503 in codes and 200 in codes, (mode, codes)  # ready fails, live passes
