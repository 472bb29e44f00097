"""Transient database failures answered 503 through real HTTP: uvicorn on a real port.

A raw keep-alive socket shows what a client sees: ``503``, ``Retry-After``, an
``application/problem+json`` body, and the *same* connection serving the next request (before,
each failure was a 500 after which uvicorn closed the connection). Unknown errors stay 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
import sqlalchemy.exc
import uvicorn
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from bench.fault_load import read_response
from personal_assistant_db import Database
from personal_assistant_db.failures import (
    TRANSIENT_SQLSTATES,
    is_disconnect,
    is_transient,
    unavailable_cause,
)
from personal_assistant_db.testing import ThrowawayServer


class Socket:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        return await read_response(self.reader)


@asynccontextmanager
async def serve(db: Database, release: asyncio.Event) -> AsyncIterator[Socket]:
    async def read(request: Request) -> Response:
        async with db.connect() as conn:
            value = (await conn.exec_driver_sql("SELECT 42")).scalar()
        return PlainTextResponse(str(value))

    async def hold(request: Request) -> Response:
        async with db.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
            await release.wait()
        return PlainTextResponse("held")

    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = Starlette(
        routes=[Route("/read", read), Route("/hold", hold), Route("/boom", boom)],
        lifespan=db.lifespan,
        exception_handlers=db.exception_handlers(),
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Socket(reader, writer)
    finally:
        writer.close()
        release.set()
        server.should_exit = True
        await task


def problem(headers: dict[str, str], body: bytes) -> dict[str, object]:
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "1"
    data: dict[str, object] = json.loads(body)
    assert data["status"] == 503 and data["title"] == "Service Unavailable"
    return data


async def test_pool_exhaustion_is_503_with_retry_after_on_a_kept_alive_connection(
    make_database: Callable[[], str],
) -> None:
    db = Database.from_env(
        {"DATABASE_URL": make_database(), "DB_ENV": "test"},
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.2,
        error_log_interval=60.0,
    )
    release = asyncio.Event()
    async with serve(db, release) as sock:
        reader, writer = await asyncio.open_connection(*sock.writer.get_extra_info("peername"))
        holder = Socket(reader, writer)
        held = asyncio.create_task(holder.get("/hold"))
        while db.pool_stats().used < 1:  # noqa: ASYNC110 - polling the pool's counter
            await asyncio.sleep(0.01)
        with capture_logs() as logs:
            answers = [await sock.get("/read") for _ in range(3)]  # one socket throughout
        for status, headers, body in answers:
            assert status == 503
            assert problem(headers, body)["cause"] == "pool_timeout"
            assert headers.get("connection", "") != "close"
        release.set()
        assert (await held)[0] == 200
        status, _, body = await sock.get("/read")  # still the same connection
        assert (status, body) == (200, b"42")
        writer.close()
        # One line for three timeouts (rate-limited), no traceback.
        assert [e["event"] for e in logs if e.get("log_level") in {"warning", "error"}] == [
            "db.pool.timeout"
        ]
        status, _, _ = await sock.get("/boom")
        assert status == 500  # an unknown error is not dressed up as 503


async def test_a_stopped_and_restarted_database_is_503_then_200_on_one_connection(
    throwaway_server: ThrowawayServer,
) -> None:
    db = Database.from_env(
        {"DATABASE_URL": throwaway_server.url, "DB_ENV": "test"},
        error_log_interval=60.0,
        pool_pre_ping=True,
    )
    async with serve(db, asyncio.Event()) as sock:
        assert (await sock.get("/read"))[0] == 200
        await asyncio.to_thread(throwaway_server.stop)
        with capture_logs() as logs:
            answers = [await sock.get("/read") for _ in range(5)]
        causes = {problem(h, b)["cause"] for s, h, b in answers if s == 503}
        assert {s for s, _, _ in answers} == {503}
        assert causes <= {"unavailable", "restarting"}
        lines = [e for e in logs if e["event"] == "db.unavailable"]
        assert 1 <= len(lines) <= 2  # one per cause per interval, not one per request
        assert sum(e["count"] for e in lines) <= 5
        await asyncio.to_thread(throwaway_server.start)
        assert (await sock.get("/read"))[:3:2] == (200, b"42")


async def test_driver_errors_of_a_restart_are_classified() -> None:
    switch = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert is_disconnect(switch) and is_transient(switch)
    assert unavailable_cause(switch) == "restarting"
    assert unavailable_cause(asyncpg.exceptions.CannotConnectNowError()) == "restarting"
    assert unavailable_cause(asyncpg.exceptions.AdminShutdownError()) == "restarting"
    assert is_disconnect(asyncpg.exceptions.AdminShutdownError())
    assert unavailable_cause(asyncpg.exceptions.QueryCanceledError()) == "timeout"
    assert unavailable_cause(sqlalchemy.exc.TimeoutError("QueuePool limit")) == "pool_timeout"
    assert unavailable_cause(asyncpg.exceptions.UniqueViolationError()) is None
    assert not is_disconnect(asyncpg.exceptions.InternalClientError("some other bug"))
    # A refused connection raised by asyncpg is an outage; the host's own is not.
    with pytest.raises(ConnectionRefusedError) as refused:
        await asyncpg.connect("postgresql://postgres@127.0.0.1:1/x", timeout=1)
    assert unavailable_cause(refused.value) == "unavailable"
    with pytest.raises(ConnectionRefusedError) as own:
        raise ConnectionRefusedError("the host's cache is down")
    assert unavailable_cause(own.value) is None


@given(st.text(alphabet="0123456789ABCDEFPZ", min_size=5, max_size=5))
def test_any_sqlstate_is_503_only_when_transient_or_a_timeout(code: str) -> None:
    error = asyncpg.exceptions.PostgresError()
    error.sqlstate = code  # type: ignore[attr-defined]
    wrapped = sqlalchemy.exc.DBAPIError("SELECT 1", None, error)
    expected = code in TRANSIENT_SQLSTATES or code == "57014"
    assert (unavailable_cause(wrapped) is not None) == expected
