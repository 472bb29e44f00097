"""The SQLAlchemy path, for what the fast path cannot run exactly (see compiled.py).

Outside a transaction a statement runs on ``engine.begin()`` (it commits, like the fast path's
autocommit). Inside one, it runs through a ``Connection`` wrapped around the leased pool
connection, with the adapter in autocommit so that SQLAlchemy does not BEGIN on top of ours.
Results come back in the fast path's shapes (``Row``, row count, scalar).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from .compiled import Row
from .lease import Lease

__all__ = ["Mode", "run_on_lease", "run_outside", "statement_error"]

Mode = Literal["all", "one", "val", "exec"]


async def run_outside(engine: AsyncEngine, statement: Any, params: Any, mode: Mode) -> Any:
    async with engine.begin() as conn:
        return shape(await conn.execute(executable(statement), params), mode)


async def run_on_lease(lease: Lease, statement: Any, params: Any, mode: Mode) -> Any:
    adapter = lease.adapter
    saved = adapter.isolation_level
    # Under force_rollback() the adapter itself began the outer transaction: hide it, or the
    # wrapping Connection's ROLLBACK on close would roll back the pinned transaction.
    started, transaction = adapter._started, adapter._transaction
    adapter.isolation_level = "autocommit"
    adapter._started, adapter._transaction = False, None
    try:
        return await greenlet_spawn(
            _run_sqlalchemy, lease.engine, lease.fairy, statement, params, mode
        )
    finally:
        adapter.isolation_level = saved
        adapter._started, adapter._transaction = started, transaction


def _run_sqlalchemy(engine: Engine, fairy: Any, statement: Any, params: Any, mode: Mode) -> Any:
    fairy._checkout_existing()  # Connection.close() must not return it to the pool
    conn = Connection(engine, connection=fairy)
    try:
        return shape(conn.execute(executable(statement), params), mode)
    finally:
        conn.close()


def shape(result: Any, mode: Mode) -> Any:
    if mode == "exec":
        return result.rowcount
    if not result.returns_rows:
        return [] if mode == "all" else None
    if mode == "val":
        return result.scalar()
    rows = [Row(r._parent, None, r._key_to_index, r._data) for r in result]
    if mode == "all":
        return rows
    return rows[0] if rows else None


def executable(statement: Any) -> Any:
    return text(statement) if isinstance(statement, str) else statement


def statement_error(engine: Engine, exc: Exception, sql: str, params: Any) -> Exception:
    """An error while binding parameters, as ``Connection.execute`` reports it."""
    return sa_exc.DBAPIError.instance(
        sql,
        params,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        dialect=engine.dialect,
    )
