"""Read-your-writes marks: the cookie/header format round-trips, and garbage is ignored."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from personal_assistant_db import Database, ReadYourWritesMiddleware
from personal_assistant_db.replicas.consistency import (
    WriteMark,
    current_mark,
    format_mark,
    open_session,
    parse_mark,
    record_write,
)


@given(st.integers(1, 2**64 - 1), st.floats(1e9, 4e9))
def test_a_mark_round_trips(lsn: int, at: float) -> None:
    parsed = parse_mark(format_mark(WriteMark(lsn=lsn, at=at)))
    assert parsed is not None
    assert parsed.lsn == lsn
    assert abs(parsed.at - at) < 0.001


@given(st.text(max_size=60))
def test_garbage_is_no_mark_and_never_raises(raw: str) -> None:
    mark = parse_mark(raw)
    assert mark is None or (mark.lsn is None or mark.lsn > 0)


def test_a_mark_only_moves_forward_within_a_session() -> None:
    open_session()
    record_write(500)
    record_write(300)  # an older position (another connection's commit) never rewinds it
    mark = current_mark()
    assert mark is not None and mark.lsn == 500
    record_write(None)  # a pending commit always wins: its position is not known yet
    mark = current_mark()
    assert mark is not None and mark.pending


async def test_sessions_do_not_leak_between_tasks() -> None:
    open_session()

    async def other() -> int | None:
        open_session()
        record_write(7)
        mark = current_mark()
        return mark.lsn if mark else None

    assert await asyncio.create_task(other()) == 7
    assert current_mark() is None


async def test_the_middleware_is_inert_without_replicas(db: Database) -> None:
    async def write(request: Request) -> PlainTextResponse:
        async with db.begin() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/", write, methods=["POST"])],
        middleware=[Middleware(ReadYourWritesMiddleware, db=db)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/", headers={"X-PA-DB-RW": "not-a-mark"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers and "x-pa-db-rw" not in response.headers


def test_the_middleware_needs_somewhere_to_put_the_mark(db: Database) -> None:
    with pytest.raises(ValueError, match="cookie or a header"):
        ReadYourWritesMiddleware(Starlette(), db=db, cookie=None, header=None)
