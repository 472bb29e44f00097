"""The health probe's reserved connection: one session outside the pool, for a saturated pool.

A probe that waits for a pool slot queues behind the requests that saturate it, and one that
skips the database verifies nothing. So while the pool is saturated the probe uses this one
connection instead: opened with the engine's own URL and connect arguments (no second engine, no
second configuration), ``application_name`` suffixed ``/health`` so operators can tell it apart,
every call bounded by asyncpg's ``timeout=`` and the connection dropped after any error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..engines import connect_args

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["ReservedConnection"]

_SQLALCHEMY_ONLY = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
    "async_fallback",
)


class ReservedConnection:
    """Opens lazily, runs ``work(connection, timeout)`` within a deadline, closes on request."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.opened = 0  # sessions opened over the life of the probe
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"<ReservedConnection open={self.is_open} opened={self.opened}>"

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def run(
        self, work: Callable[[Any, float], Awaitable[Any]], deadline: float
    ) -> tuple[Any, float]:
        """``(value, query seconds)``; raises on failure (the connection is dropped)."""
        began = time.perf_counter()
        try:
            if not self.is_open:
                self._conn = await self._connect(deadline)
            remaining = max(0.001, deadline - (time.perf_counter() - began))
            started = time.perf_counter()
            value = await work(self._conn, remaining)
            return value, time.perf_counter() - started
        except BaseException:
            self._drop()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # never waits on the server (it may be the frozen one)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _connect(self, budget: float) -> Any:
        import asyncpg

        engine = self.db.engine
        _, params = engine.dialect.create_connect_args(engine.url)
        for key in _SQLALCHEMY_ONLY:
            params.pop(key, None)
        params.update(connect_args(self.db.settings))
        name = self.db.settings.application_name.encode()[:55].decode(errors="ignore")
        server_settings = {**params["server_settings"], "application_name": f"{name}/health"}
        if "statement_timeout" in server_settings:  # direct only: PgBouncer refuses it at startup
            server_settings["statement_timeout"] = str(max(1, int(budget * 1000)))
        params["server_settings"] = server_settings
        params["timeout"] = budget
        params.pop("command_timeout", None)  # every call passes its own timeout
        conn = await asyncpg.connect(**params)
        self.opened += 1
        return conn
