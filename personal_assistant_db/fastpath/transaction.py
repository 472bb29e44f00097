"""``async with db.transaction() as tx:``: the fast path's statements on one connection.

The outermost transaction checks a connection out and sends ``BEGIN``; a nested one (a
``db.transaction()`` inside the block, in the same task, or ``tx.transaction()``) is a
``SAVEPOINT``. Leaving the block commits (or releases the savepoint); an exception, or a
``BaseException`` such as a cancellation, rolls back. Inside the block the statement API of the
same ``Database`` joins it (ambient.py). Nothing inside a transaction is ever retried. If the
rollback or commit itself fails or is cancelled, the connection is terminated rather than
returned in an unknown state. ``tx.iterate()`` streams rows through a server-side cursor.

Several tasks may share one transaction (a task hands ``tx`` to others): their calls are
serialized, one round trip at a time, on the connection's ``CallLock``. ``@db.transaction()``
decorates a coroutine function: each call runs in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import ambient
from .ambient import CallLock
from .compiled import Row
from .lease import Lease
from .observed import observed

if TYPE_CHECKING:
    from .executor import FastPath

__all__ = ["Transaction"]

P = ParamSpec("P")
T = TypeVar("T")


class Transaction:
    """One transaction (or savepoint) on one connection; the same methods as ``Database``."""

    def __init__(
        self,
        fast: FastPath,
        parent: Transaction | None = None,
        *,
        scope: FastPath | None = None,
        ambient: bool = True,
    ) -> None:
        """``scope``: the Database's primary executor, whose calls may join this transaction
        (default ``fast``); ``ambient=False``: an internal transaction that nothing joins."""
        self._fast = fast
        self.scope = scope if scope is not None else fast
        self._parent = parent
        self._ambient = ambient
        self._lease: Lease | None = None
        self._lock: CallLock | None = None
        self._tx: Any = None
        self._owns_connection = False
        self._held: Token[tuple[object, ...]] | None = None
        self._token: Token[Transaction | None] | None = None
        #: The task that entered the block: only it joins implicitly.
        self.task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        kind = "savepoint" if self._tx is not None and not self._owns_connection else "transaction"
        state = "active" if self._tx is not None else "inactive"
        return f"<Transaction {kind} {state}>"

    @classmethod
    def pinned(cls, scope: FastPath, lease: Lease, marker: Any) -> Transaction:
        """The force-rollback pin's outer transaction (pin.py begins and ends it)."""
        tx = cls(scope)
        tx._lease, tx._lock, tx._tx = lease, CallLock(), marker
        return tx

    @property
    def lease(self) -> Lease:
        if self._lease is None or self._tx is None:
            raise RuntimeError("use the transaction inside `async with db.transaction() as tx:`")
        return self._lease

    def _active(self) -> tuple[Lease, CallLock]:
        lease, lock = self._lease, self._lock
        if lease is None or lock is None or self._tx is None:
            raise RuntimeError("use the transaction inside `async with db.transaction() as tx:`")
        return lease, lock

    def __call__(self, func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """``@db.transaction()``: each call of ``func`` runs in a transaction of its own (a
        savepoint when the caller is inside one)."""

        @functools.wraps(func)
        async def run_in_transaction(*args: P.args, **kwargs: P.kwargs) -> T:
            fresh = Transaction(self._fast, self._parent, scope=self.scope, ambient=self._ambient)
            async with fresh:
                return await func(*args, **kwargs)

        return run_in_transaction

    async def __aenter__(self) -> Transaction:
        if self._tx is not None:
            raise RuntimeError("this transaction is already active: enter a new db.transaction()")
        parent = self._parent
        if parent is None and self._ambient:
            parent = ambient.joined(self.scope)
        if parent is None:
            fast = self._fast
            fast.check_loop()
            lease = await Lease.acquire(fast.engine)
            lock = CallLock()
        else:
            lease, lock = parent._active()
        held = await lock.hold() if parent is not None else None
        tx = lease.driver.transaction()
        try:
            async with lock:
                await tx.start()
        except BaseException as exc:
            if parent is None:
                lease.release_now(discard=True)
            else:
                lock.unhold(held)
            if isinstance(exc, Exception):
                failure = lease.error(exc, "BEGIN", ())
                raise failure from failure.orig
            raise
        self._lease, self._lock, self._tx = lease, lock, tx
        self._held = held
        self._owns_connection = parent is None
        self.task = asyncio.current_task()
        if self._ambient:
            self._token = ambient.current.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx, self._tx = self._tx, None
        lease, lock = self._lease, self._lock
        assert lease is not None and lock is not None and tx is not None
        token, self._token = self._token, None
        if token is not None:
            # ValueError: left in another context (a generator finalized elsewhere)
            with contextlib.suppress(ValueError):
                ambient.current.reset(token)
        owns = self._owns_connection
        clean = False
        try:
            async with lock:
                if exc_type is None:
                    await tx.commit()
                else:
                    await tx.rollback()
            clean = True
        except Exception as error:
            failure = lease.error(error, "COMMIT" if exc_type is None else "ROLLBACK", ())
            if exc_type is None:
                raise failure from failure.orig
            # The block already failed (often for the same reason, a lost connection): the
            # connection is discarded below and the block's own exception propagates.
        finally:
            if owns:
                self._lease = self._lock = None
                await lease.release(discard=not clean)
            else:
                held, self._held = self._held, None
                lock.unhold(held)
        if owns and exc_type is None and self._fast.on_write is not None:
            self._fast.on_write()  # committed: read-your-writes records it

    def transaction(self) -> Transaction:
        """A nested transaction: ``SAVEPOINT`` ... ``RELEASE`` (or ``ROLLBACK TO``)."""
        return Transaction(self._fast, self, scope=self.scope, ambient=self._ambient)

    async def fetch_all(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Row]:
        lease, lock = self._active()
        async with lock:
            result: list[Row] = await self._fast.run_on(lease, statement, params, "all")
        return result

    async def fetch_one(
        self, statement: Any, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        lease, lock = self._active()
        async with lock:
            result: Row | None = await self._fast.run_on(lease, statement, params, "one")
        return result

    async def fetch_val(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        lease, lock = self._active()
        async with lock:
            return await self._fast.run_on(lease, statement, params, "val")

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        lease, lock = self._active()
        async with lock:
            result: int = await self._fast.run_on(lease, statement, params, "exec")
        return result

    async def execute_many(self, statement: Any, params: Sequence[Mapping[str, Any]]) -> None:
        lease, lock = self._active()
        async with lock:
            await self._fast.execute_many_on(lease, statement, params)

    async def iterate(
        self, statement: Any, params: Mapping[str, Any] | None = None, *, batch: int = 100
    ) -> AsyncIterator[Row]:
        """Rows through a server-side cursor, ``batch`` at a time (one round trip per batch)."""
        fast, (lease, lock) = self._fast, self._active()
        entry, extracted = fast.compiled(statement, tuple(sorted(params)) if params else ())
        if isinstance(entry, str):
            async with lock:
                rows = await fast.fallback_on(lease, statement, params, "all", entry)
            for row in rows:
                yield row
            return
        try:
            sql, args = entry.bind(params, extracted)
        except Exception as exc:
            failure = lease.error(exc, entry.sql, params)
            raise failure from failure.orig
        opened = _open_cursor(lease, sql, args)
        async with lock:
            attributes, cursor = await observed(fast.observer, lease, sql, args, opened)
        meta = entry.metadata(attributes)
        processors, index = meta._processors, meta._key_to_index
        while True:
            try:
                async with lock:
                    records = await cursor.fetch(batch)
            except Exception as exc:
                failure = lease.error(exc, sql, args)
                raise failure from failure.orig
            for record in records:
                yield Row(meta, processors, index, record)
            if len(records) < batch:
                return


async def _open_cursor(lease: Lease, sql: str, args: Sequence[Any]) -> tuple[Any, Any]:
    prepared, attributes = await lease.prepare(sql)
    return attributes, await prepared.cursor(*args)
