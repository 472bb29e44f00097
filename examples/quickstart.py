"""The README's app: one Database, its /health mount, one route that queries.

Run it with an ASGI server (``pip install "personal-assistant-db[server]"`` installs uvicorn):
``DATABASE_URL=postgresql://user:password@host:5432/dbname uvicorn examples.quickstart:app``
"""

from __future__ import annotations

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from personal_assistant_db import Database, Telemetry

db = Database.from_env()  # DATABASE_URL + DB_*, validated; nothing connects yet
telemetry = Telemetry(db)  # spans + metrics on db's engine, from OTEL_* variables


async def now(request: Request) -> JSONResponse:
    # One statement, one round trip. Several in one transaction: `async with db.transaction()`;
    # full SQLAlchemy: `async with db.connect() as conn`; the ORM: `async with db.session()`
    # (docs/queries.md). Tests: each in a rolled-back transaction, `pa_db_rollback` (testing.md)
    value = await db.fetch_val(text("SELECT now()"))
    return JSONResponse({"now": value.isoformat()})


app = Starlette(
    routes=[
        Route("/now", now),
        Mount("/health", app=db.health_app(telemetry=telemetry)),
    ],
    # Mount never runs a sub-app's lifespan, so the app runs db's. With one of your own:
    # lifespan=combine_lifespans(db.lifespan, your_lifespan)
    lifespan=db.lifespan,
    exception_handlers=db.exception_handlers(),  # pool timeout, database down/restarting -> 503
)
