"""``db.force_rollback()``: one pinned connection in an outer transaction that is rolled back.

For test suites (as encode/databases' ``force_rollback`` and Django's ``TestCase``): while the
pin is active,

- every statement-API call of any task that is not inside its own ``db.transaction()`` block runs
  on the pinned connection, inside the outer transaction; a ``db.transaction()`` becomes a
  savepoint of it;
- ``db.connect()`` and ``db.begin()`` return ``PinnedConnection``: the pinned connection inside a
  savepoint (``commit()`` releases it and opens the next, ``rollback()`` rolls back to it), so
  nothing a test does can commit the outer transaction;
- calls take turns on the pin's ``CallLock`` (a ``db.connect()``/``db.begin()`` block holds it for
  the block; the same task may still use the statement API inside it);
- ``db.pinned_connection`` is the pinned ``AsyncConnection`` (bind an ORM session to it).

At exit the outer transaction is rolled back and the connection goes back to the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from .lease import Lease
from .transaction import Transaction

if TYPE_CHECKING:
    from .executor import FastPath

__all__ = ["PinnedConnection", "connection_of", "force_rollback", "pinned_connection"]


class _Pinned:
    """What the pin's ``Transaction`` carries: the connection and its outer transaction."""

    __slots__ = ("conn", "outer")

    def __init__(self, conn: AsyncConnection, outer: AsyncTransaction) -> None:
        self.conn = conn
        self.outer = outer


def connection_of(pin: Transaction) -> AsyncConnection:
    state: _Pinned = pin._tx
    return state.conn


@asynccontextmanager
async def force_rollback(scope: FastPath) -> AsyncIterator[None]:
    if scope.pin is not None:
        raise RuntimeError("db.force_rollback() is already active on this Database")
    scope.check_loop()
    engine = scope.async_engine
    conn = await engine.connect()
    try:
        outer = await conn.begin()
        # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement: send one now, so
        # the fast path's statements on the driver run inside the outer transaction.
        await conn.exec_driver_sql("SELECT 1")
        fairy = await conn.get_raw_connection()
        lease = Lease(engine.sync_engine, fairy)
        if not lease.driver.is_in_transaction():  # pragma: no cover - the adapter changed
            raise RuntimeError("force_rollback: the pinned connection is not in a transaction")
    except BaseException:
        await conn.invalidate()
        await conn.close()
        raise
    pinned = Transaction.pinned(scope, lease, _Pinned(conn, outer))
    scope.pin = pinned
    try:
        yield
    finally:
        scope.pin = None
        _, lock = pinned._active()
        try:
            async with lock:  # a round trip still running on the pin finishes first
                await outer.rollback()
        except BaseException:
            await conn.invalidate()  # in doubt: never back to the pool with the test's rows
            raise
        finally:
            pinned._tx = pinned._lease = pinned._lock = None
            await conn.close()


class PinnedConnection:
    """``db.connect()`` / ``db.begin()`` under ``force_rollback()``: the pinned connection in a
    savepoint of its own. Used as ``async with`` or awaited, like ``AsyncConnection``; any
    other attribute is the pinned connection's."""

    def __init__(self, pin: Transaction, begin: bool) -> None:
        self._pin = pin
        self._begin = begin
        self._savepoint: AsyncTransaction | None = None
        self._held = False
        self._token: Token[tuple[object, ...]] | None = None

    def __repr__(self) -> str:
        return f"<PinnedConnection {'begin' if self._begin else 'connect'} held={self._held}>"

    @property
    def _conn(self) -> AsyncConnection:
        return connection_of(self._pin)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def start(self) -> PinnedConnection:
        _, lock = self._pin._active()
        self._token = await lock.hold()
        self._held = True
        try:
            async with lock:
                self._savepoint = await self._conn.begin_nested()
        except BaseException:
            self._held = False
            lock.unhold(self._token)
            raise
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    async def __aenter__(self) -> PinnedConnection:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._finish(commit=self._begin and exc_type is None)

    async def _end(self, commit: bool) -> None:
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None and savepoint.is_active:
            await (savepoint.commit() if commit else savepoint.rollback())

    async def _finish(self, commit: bool) -> None:
        if not self._held:
            return
        _, lock = self._pin._active()
        try:
            async with lock:
                await self._end(commit)
        finally:
            self._held = False
            lock.unhold(self._token)

    def begin(self) -> AsyncTransaction:
        """A savepoint (the outer transaction is the pin's)."""
        return self._conn.begin_nested()

    async def commit(self) -> None:
        """Release this connection's savepoint and open the next one."""
        await self._end(commit=True)
        self._savepoint = await self._conn.begin_nested()

    async def rollback(self) -> None:
        """Roll back to this connection's savepoint and open the next one."""
        await self._end(commit=False)
        self._savepoint = await self._conn.begin_nested()

    async def close(self) -> None:
        """Roll back what was not committed; the pinned connection stays open."""
        await self._finish(commit=False)


def pinned_connection(pin: Transaction, begin: bool) -> AsyncConnection:
    """``db.connect()`` (``begin=False``) or ``db.begin()`` under ``force_rollback()``, typed
    as the ``AsyncConnection`` it stands for."""
    return cast("AsyncConnection", PinnedConnection(pin, begin))
