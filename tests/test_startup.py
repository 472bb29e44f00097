"""Startup on real servers: retry, fatal errors, degraded start and recovery, warm-up."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from personal_assistant_db import (
    ConnectFatal,
    ConnectTimeout,
    Database,
)
from personal_assistant_db.testing import ThrowawayServer, plain_url

CANARY = "Canary-Secret-9f3k"


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def test_warm_up_opens_connections_before_ready(
    test_env: dict[str, str], database_url: str
) -> None:
    app_name = f"pa-warm-{uuid.uuid4().hex[:8]}"
    db = Database.from_env(test_env, warmup_connections=5, application_name=app_name)
    with capture_logs() as logs:
        await db.start()
    try:
        with psycopg.connect(plain_url(database_url)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
            ).fetchone()
        assert row == (5,)
        assert db.pool_stats().created == 5
        [warm] = [e for e in logs if e["event"] == "db.warmup"]
        assert warm["opened"] == 5
    finally:
        await db.stop()


async def test_missing_database_fails_at_once_without_retry(server_url: str) -> None:
    env = {"DATABASE_URL": with_database(server_url, "pa_no_such_db"), "DB_ENV": "test"}
    db = Database.from_env(env, connect_retry_deadline=10.0)
    began = time.perf_counter()
    with capture_logs() as logs, pytest.raises(ConnectFatal, match="database does not exist"):
        await db.start()
    assert time.perf_counter() - began < 2.0
    assert not [e for e in logs if e["event"] == "db.connect.retry"]
    assert not db.started


async def test_degraded_start_still_fails_at_once_on_a_fatal_error(server_url: str) -> None:
    """Degraded mode waits for nothing, except to learn that retrying cannot help."""
    env = {"DATABASE_URL": with_database(server_url, "pa_no_such_db"), "DB_ENV": "test"}
    db = Database.from_env(env, startup_mode="degraded")
    with pytest.raises(ConnectFatal, match="database does not exist"):
        await db.start()
    assert not db.started


async def test_degraded_start_returns_before_a_black_hole_answers(silent_port: int) -> None:
    """A server that never answers: start() waits DB_DEGRADED_START_WAIT, not the connect timeout
    (10 s) or the retry deadline (30 s); the app is started and not ready."""
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/postgres"
    db = Database.from_env(
        {"DATABASE_URL": url, "DB_ENV": "production"},
        startup_mode="degraded",
        warmup_connections=0,
        degraded_start_wait=0.2,
    )
    began = time.perf_counter()
    await db.start()
    try:
        took = time.perf_counter() - began
        assert db.started and not db.ready
        assert took < db.settings.connect_timeout  # bounded by the start wait, not a connect
    finally:
        await db.stop()


def test_wrong_password_fails_at_once_and_never_shows_it(postgres_bindir: Path | None) -> None:
    server = ThrowawayServer(password=CANARY, bindir=postgres_bindir)
    server.start()
    try:
        wrong = server.url.replace(CANARY, CANARY + "-wrong")

        async def attempt() -> ConnectFatal:
            db = Database.from_env({"DATABASE_URL": wrong, "DB_ENV": "test"})
            with pytest.raises(ConnectFatal) as info:
                await db.start()
            return info.value

        with capture_logs() as logs:
            error = asyncio.run(attempt())
        assert "authentication failed" in str(error)
        assert CANARY not in str(error)
        assert CANARY not in repr(logs)
    finally:
        server.cleanup()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers (a black hole)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


async def test_unresponsive_host_stops_at_the_deadline(silent_port: int) -> None:
    env = {"DATABASE_URL": f"postgresql://u:{CANARY}@127.0.0.1:{silent_port}/db", "DB_ENV": "test"}
    db = Database.from_env(env, connect_timeout=0.3, connect_retry_deadline=1.0)
    began = time.perf_counter()
    with capture_logs() as logs, pytest.raises(ConnectTimeout) as info:
        await db.start()
    elapsed = time.perf_counter() - began
    assert 0.3 <= elapsed < 2.5
    assert "timed out" in str(info.value)
    assert info.value.cause == "TimeoutError"
    assert CANARY not in str(info.value) + repr(logs)


async def test_refused_connection_is_retried_with_growing_jittered_delays() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections to it are refused
    env = {"DATABASE_URL": f"postgresql://u@127.0.0.1:{port}/db", "DB_ENV": "test"}
    db = Database.from_env(env, connect_retry_deadline=1.5, connect_retry_initial=0.05)
    with capture_logs() as logs, pytest.raises(ConnectTimeout, match="connection refused"):
        await db.start()
    retries = [e for e in logs if e["event"] == "db.connect.retry"]
    assert len(retries) >= 3
    assert [e["attempt"] for e in retries] == list(range(1, len(retries) + 1))
    assert all(e["cause"] == "ConnectionRefusedError" for e in retries)
    assert all(0 <= e["delay"] <= 0.05 * 2 ** e["attempt"] for e in retries)
    # each retry says how long retrying goes on, and the time left only shrinks
    assert all(
        e["deadline_s"] == 1.5 and "(DB_CONNECT_RETRY_DEADLINE=1.5s)" in e["until"] for e in retries
    )
    left = [e["left_s"] for e in retries]
    assert left == sorted(left, reverse=True) and 0 <= left[-1] <= left[0] <= 1.5
    assert all(e["hint"].startswith("connection refused") for e in retries)


async def test_too_many_connections_is_transient_and_recovers(server_url: str) -> None:
    """SQLSTATE 53300 from a role with CONNECTION LIMIT 0: retried until the limit is lifted."""
    role = f"pa_limited_{uuid.uuid4().hex[:8]}"
    admin = plain_url(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 0").format(sql.Identifier(role))
        )
    try:
        url = make_url(admin).set(username=role).render_as_string(hide_password=False)
        db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test"}, connect_retry_deadline=10.0)

        async def lift_limit() -> None:
            await asyncio.sleep(0.8)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(sql.Identifier(role))
                )

        with capture_logs() as logs:
            await asyncio.gather(db.start(), lift_limit())
        assert db.ready
        retries = [e for e in logs if e["event"] == "db.connect.retry"]
        assert retries
        await db.stop()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def test_degraded_start_serves_and_recovers_when_the_server_returns(
    throwaway_server: ThrowawayServer,
) -> None:
    throwaway_server.stop()
    env = {"DATABASE_URL": throwaway_server.url, "DB_ENV": "test"}
    db = Database.from_env(
        env, startup_mode="degraded", connect_retry_deadline=0.3, connect_retry_max=0.2
    )
    await db.start()
    try:
        assert db.started
        assert not db.ready
        await asyncio.to_thread(throwaway_server.start)
        for _ in range(100):
            if db.ready:
                break
            await asyncio.sleep(0.05)
        assert db.ready
        async with db.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    finally:
        await db.stop()


async def test_fail_fast_start_raises_and_leaves_nothing_running(
    throwaway_server: ThrowawayServer,
) -> None:
    throwaway_server.stop()
    db = Database.from_env(
        {"DATABASE_URL": throwaway_server.url, "DB_ENV": "test"}, connect_retry_deadline=0.3
    )
    with pytest.raises(ConnectTimeout):
        await db.start()
    assert not db.started
