"""``async with db.transaction() as tx:``: the fast path's statements on one connection.

The outermost transaction checks a connection out and sends ``BEGIN``; a nested one
(``tx.transaction()``) is a ``SAVEPOINT``. Leaving the block commits (or releases the
savepoint); an exception rolls back. Nothing inside a transaction is ever retried. If the
rollback or commit itself fails or is cancelled, the connection is terminated rather than
returned in an unknown state. ``tx.iterate()`` streams rows through a server-side cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .compiled import Row
from .lease import Lease
from .observed import observed

if TYPE_CHECKING:
    from .executor import FastPath

__all__ = ["Transaction"]


class Transaction:
    """One transaction (or savepoint) on one connection; the same methods as ``Database``."""

    def __init__(self, fast: FastPath, parent: Transaction | None = None) -> None:
        self._fast = fast
        self._parent = parent
        self._lease: Lease | None = parent._lease if parent is not None else None
        self._tx: Any = None

    def __repr__(self) -> str:
        kind = "savepoint" if self._parent is not None else "transaction"
        state = "active" if self._tx is not None else "inactive"
        return f"<Transaction {kind} {state}>"

    @property
    def lease(self) -> Lease:
        if self._lease is None or self._tx is None:
            raise RuntimeError("use the transaction inside `async with db.transaction() as tx:`")
        return self._lease

    async def __aenter__(self) -> Transaction:
        if self._parent is None:
            self._lease = await Lease.acquire(self._fast.engine)
        lease = self._lease
        if lease is None:
            raise RuntimeError("the outer transaction is not active")
        tx = lease.driver.transaction()
        try:
            await tx.start()
        except BaseException as exc:
            if self._parent is None:
                lease.release_now(discard=True)
            if isinstance(exc, Exception):
                failure = lease.error(exc, "BEGIN", ())
                raise failure from failure.orig
            raise
        self._tx = tx
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx, self._tx = self._tx, None
        lease = self._lease
        assert lease is not None and tx is not None
        clean = False
        try:
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
            if self._parent is None:
                self._lease = None
                await lease.release(discard=not clean)
        if self._parent is None and exc_type is None and self._fast.on_write is not None:
            self._fast.on_write()  # committed: read-your-writes records it

    def transaction(self) -> Transaction:
        """A nested transaction: ``SAVEPOINT`` ... ``RELEASE`` (or ``ROLLBACK TO``)."""
        return Transaction(self._fast, self)

    async def fetch_all(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Row]:
        result: list[Row] = await self._fast.run_on(self.lease, statement, params, "all")
        return result

    async def fetch_one(
        self, statement: Any, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        result: Row | None = await self._fast.run_on(self.lease, statement, params, "one")
        return result

    async def fetch_val(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        return await self._fast.run_on(self.lease, statement, params, "val")

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        result: int = await self._fast.run_on(self.lease, statement, params, "exec")
        return result

    async def execute_many(self, statement: Any, params: Sequence[Mapping[str, Any]]) -> None:
        await self._fast.execute_many_on(self.lease, statement, params)

    async def iterate(
        self, statement: Any, params: Mapping[str, Any] | None = None, *, batch: int = 100
    ) -> AsyncIterator[Row]:
        """Rows through a server-side cursor, ``batch`` at a time (one round trip per batch)."""
        fast, lease = self._fast, self.lease
        entry, extracted = fast.compiled(statement, tuple(sorted(params)) if params else ())
        if isinstance(entry, str):
            for row in await fast.fallback_on(lease, statement, params, "all", entry):
                yield row
            return
        try:
            sql, args = entry.bind(params, extracted)
        except Exception as exc:
            failure = lease.error(exc, entry.sql, params)
            raise failure from failure.orig
        opened = _open_cursor(lease, sql, args)
        attributes, cursor = await observed(fast.observer, lease, sql, args, opened)
        meta = entry.metadata(attributes)
        processors, index = meta._processors, meta._key_to_index
        while True:
            try:
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
