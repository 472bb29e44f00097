"""The lifespan under an in-process ASGI client and under uvicorn; combine_lifespans order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from personal_assistant_db import STATE_KEY, Database, combine_lifespans


def make_app(db: Database, events: list[str]) -> Starlette:
    @asynccontextmanager
    async def own(app: Any) -> AsyncIterator[dict[str, Any]]:
        events.append("own:start")
        assert db.ready, "the database lifespan runs first"
        yield {"greeting": "hi"}
        events.append("own:stop")
        assert db.started, "the database stops after the host's own shutdown"

    async def users(request: Request) -> JSONResponse:
        database: Database = request.state.personal_assistant_db
        async with database.connect() as conn:
            value = (await conn.exec_driver_sql("SELECT 41 + 1")).scalar()
        return JSONResponse({"value": value, "greeting": request.state.greeting})

    return Starlette(routes=[Route("/q", users)], lifespan=combine_lifespans(db.lifespan, own))


async def test_in_process_client_with_lifespan(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env)
    events: list[str] = []
    app = make_app(db, events)
    async with LifespanManager(app) as manager:
        assert db.ready
        assert manager._state[STATE_KEY] is db
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/q")
        assert response.json() == {"value": 42, "greeting": "hi"}
    assert not db.started
    assert events == ["own:start", "own:stop"]


async def test_under_uvicorn(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env)
    events: list[str] = []
    app = make_app(db, events)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/q")
        assert response.json() == {"value": 42, "greeting": "hi"}
    finally:
        server.should_exit = True
        await task
    assert events == ["own:start", "own:stop"]
    assert not db.started


async def test_a_failing_lifespan_shuts_down_those_already_started(
    test_env: dict[str, str],
) -> None:
    db = Database.from_env(test_env)

    @asynccontextmanager
    async def broken(app: Any) -> AsyncIterator[None]:
        raise RuntimeError("host failed to start")
        yield  # pragma: no cover

    combined = combine_lifespans(db.lifespan, broken)
    with pytest.raises(RuntimeError, match="host failed"):
        async with combined(None):
            pass
    assert not db.started


def test_combine_needs_a_lifespan() -> None:
    with pytest.raises(TypeError, match="at least one lifespan"):
        combine_lifespans()
