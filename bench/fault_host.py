"""The host app the fault suite serves with uvicorn: the package used the way the README shows.

``uvicorn --factory bench.fault_host:create_app`` with ``DATABASE_URL`` and ``DB_*`` set.

- ``GET /read?id=N``: one row by primary key on the fast path (``db.fetch_one``: one round trip,
  retried on a fresh connection after a disconnect within ``DB_READ_RETRY_BUDGET_MS``);
  ``GET /read?id=N&path=connect`` runs it through ``db.connect()`` instead (no retry).
- ``GET /hold?ms=N``: holds a pooled connection for N ms (``pg_sleep``): pool exhaustion.
- ``GET /cancel``: a query cancelled after 5 ms by ``asyncio.timeout`` (answers 504 itself).
- ``GET /boom``: an unknown error, which must stay a 500.
- ``GET /stats``: ``PoolStats``, the read path, and the 503 causes counted by the handlers.
- ``/health``: the package's health mount. Transient database errors: ``db.exception_handlers()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from personal_assistant_db import Database

__all__ = ["TABLE_SQL", "create_app"]

TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS fault_items (id int PRIMARY KEY, v text NOT NULL);"
    "INSERT INTO fault_items SELECT g, md5(g::text) FROM generate_series(1, 1000) g "
    "ON CONFLICT DO NOTHING"
)
READ = text("SELECT v FROM fault_items WHERE id = :id")


def create_app() -> Starlette:
    db = Database.from_env()

    async def read(request: Request) -> Response:
        key = int(request.query_params.get("id", "1"))
        row: Any
        if request.query_params.get("path") == "connect":
            async with db.connect() as conn:
                row = (await conn.execute(READ, {"id": key})).first()
        else:
            row = await db.fetch_one(READ, {"id": key})
        return PlainTextResponse(row[0] if row is not None else "")

    async def hold(request: Request) -> Response:
        ms = int(request.query_params.get("ms", "1000"))
        async with db.connect() as conn:
            await conn.exec_driver_sql(f"SELECT pg_sleep({ms / 1000:.3f})")
        return PlainTextResponse("held")

    async def cancel(request: Request) -> Response:
        try:
            async with asyncio.timeout(0.005), db.connect() as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(0.2)")
        except TimeoutError:
            return PlainTextResponse("cancelled", 504)
        return PlainTextResponse("finished")

    async def boom(request: Request) -> Response:
        raise RuntimeError("an unknown bug")

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "pool": db.pool_stats().as_dict(),
                "read_retries": db.pool_stats().read_retries,
                "unavailable": db.unavailable_log.total,
                "ready": db.ready,
                "application_name": db.settings.application_name,
            }
        )

    routes = [
        Route("/read", read),
        Route("/hold", hold),
        Route("/cancel", cancel),
        Route("/boom", boom),
        Route("/stats", stats),
        Mount("/health", app=db.health_app()),
    ]
    return Starlette(
        routes=routes, lifespan=db.lifespan, exception_handlers=db.exception_handlers()
    )
