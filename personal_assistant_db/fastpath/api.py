"""The statement methods of ``Database``: thin calls into its ``FastPath``.

Without ``DATABASE_REPLICA_URLS`` a call goes straight to the primary's executor: api ->
executor -> compiled / lease, one way, and no replica code runs. With replicas, reads
(``fetch_*``, ``iterate``) go through ``ReplicaReads`` (reads.py), which asks the replica set for
a node: a healthy replica that has this session's writes (a statement that writes stays on the
primary). Writes (``execute``, ``execute_many``, ``transaction``) always run on the primary and
record a read-your-writes mark.

Inside ``async with db.transaction():`` (same task) or while ``db.force_rollback()`` is active, a
call joins that transaction instead (ambient.py): the check costs one contextvar read and one
attribute read per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from . import pin
from .ambient import current, joined
from .compiled import Row
from .executor import FastPath
from .transaction import Transaction

if TYPE_CHECKING:
    from .reads import ReplicaReads

__all__ = ["StatementMethods"]


class StatementMethods:
    """Mixed into ``Database``: Core statements and ``text()`` on the fast path."""

    fast_path: FastPath
    #: Set only with read replicas configured.
    replica_reads: ReplicaReads | None

    async def fetch_all(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a Core statement or ``text()`` (one round trip, autocommit)."""
        fast = self.fast_path
        if current.get() is not None or fast.pin is not None:
            tx = joined(fast)
            if tx is not None:
                return await tx.fetch_all(statement, params)
        reads = self.replica_reads
        if reads is None:
            rows: list[Row] = await fast.run(statement, params, "all")
        else:
            rows = await reads.fetch(statement, params, "all")
        return rows

    async def fetch_one(
        self, statement: Any, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        """The first row, or None."""
        fast = self.fast_path
        if current.get() is not None or fast.pin is not None:
            tx = joined(fast)
            if tx is not None:
                return await tx.fetch_one(statement, params)
        reads = self.replica_reads
        if reads is None:
            row: Row | None = await fast.run(statement, params, "one")
        else:
            row = await reads.fetch(statement, params, "one")
        return row

    async def fetch_val(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        fast = self.fast_path
        if current.get() is not None or fast.pin is not None:
            tx = joined(fast)
            if tx is not None:
                return await tx.fetch_val(statement, params)
        reads = self.replica_reads
        if reads is None:
            return await fast.run(statement, params, "val")
        return await reads.fetch(statement, params, "val")

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement in autocommit; the row count (-1 when the server reports none).
        Never retried. Inside a transaction block: in that transaction."""
        fast = self.fast_path
        if current.get() is not None or fast.pin is not None:
            tx = joined(fast)
            if tx is not None:
                return await tx.execute(statement, params)
        count: int = await fast.run(statement, params, "exec")
        if fast.on_write is not None:
            fast.on_write()
        return count

    async def execute_many(self, statement: Any, params: Sequence[Mapping[str, Any]]) -> None:
        """One statement for each parameter set, with asyncpg's ``executemany``, in one
        transaction (the caller's, inside a transaction block). Never retried."""
        fast = self.fast_path
        tx = joined(fast)
        if tx is not None:
            await tx.execute_many(statement, params)
            return
        async with Transaction(fast, ambient=False) as own:
            await own.execute_many(statement, params)

    def transaction(self) -> Transaction:
        """``async with db.transaction() as tx:`` one connection, one transaction; the statement
        API called inside the block by the same task joins it, a nested ``db.transaction()``
        (or ``tx.transaction()``) is a savepoint. Child tasks do not join unless handed ``tx``.
        Also a decorator: ``@db.transaction()``."""
        return Transaction(self.fast_path)

    async def iterate(
        self, statement: Any, params: Mapping[str, Any] | None = None, *, batch: int = 100
    ) -> AsyncIterator[Row]:
        """Stream rows through a server-side cursor: in the caller's transaction inside a block,
        else in a read transaction of its own (on a replica when one may serve it: never retried
        mid-stream). Close it early with ``contextlib.aclosing``."""
        fast = self.fast_path
        tx = joined(fast)
        if tx is not None:
            async for row in tx.iterate(statement, params, batch=batch):
                yield row
            return
        reads = self.replica_reads
        path = fast if reads is None else reads.read_path(statement)
        # ambient=False: a generator's block would leak into the consumer's context
        async with Transaction(path, scope=fast, ambient=False) as own:
            async for row in own.iterate(statement, params, batch=batch):
                yield row

    # -- test isolation ----------------------------------------------------------------------
    def force_rollback(self) -> AbstractAsyncContextManager[None]:
        """``async with db.force_rollback():`` every statement-API call, ``db.connect()`` and
        ``db.begin()`` of any task runs on ONE pinned connection, inside an outer transaction
        that is rolled back at exit; ``db.transaction()`` becomes a savepoint; calls take turns
        on a lock. For test suites (pin.py)."""
        return pin.force_rollback(self.fast_path)

    @property
    def pinned_connection(self) -> AsyncConnection | None:
        """The pinned ``AsyncConnection`` while ``force_rollback()`` is active, else None (bind
        an ORM session to it to share the test's transaction)."""
        active = self.fast_path.pin
        return pin.connection_of(active) if active is not None else None
