"""The statement methods of ``Database``: thin calls into its ``FastPath``.

Reads (``fetch_*``, ``iterate``) go through ``replicas``: with ``DATABASE_REPLICA_URLS`` a read
runs on a healthy replica that has this session's writes (a statement that writes stays on the
primary); without, straight on the primary's fast path. Writes (``execute``, ``execute_many``,
``transaction``) always run on the primary and record a read-your-writes mark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .compiled import Row
from .executor import FastPath
from .transaction import Transaction

if TYPE_CHECKING:
    from ..replicas.replica_set import ReplicaSet

__all__ = ["StatementMethods"]


class StatementMethods:
    """Mixed into ``Database``: Core statements and ``text()`` on the fast path."""

    fast_path: FastPath
    replicas: ReplicaSet

    async def fetch_all(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a Core statement or ``text()`` (one round trip, autocommit)."""
        rows: list[Row] = await self.replicas.fetch(self.fast_path, statement, params, "all")
        return rows

    async def fetch_one(
        self, statement: Any, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        """The first row, or None."""
        row: Row | None = await self.replicas.fetch(self.fast_path, statement, params, "one")
        return row

    async def fetch_val(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        return await self.replicas.fetch(self.fast_path, statement, params, "val")

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement in autocommit; the row count (-1 when the server reports none).
        Never retried."""
        count: int = await self.fast_path.run(statement, params, "exec")
        self.replicas.wrote()
        return count

    async def execute_many(self, statement: Any, params: Sequence[Mapping[str, Any]]) -> None:
        """One statement for each parameter set, with asyncpg's ``executemany``, in one
        transaction. Never retried."""
        async with self.transaction() as tx:
            await tx.execute_many(statement, params)

    def transaction(self) -> Transaction:
        """``async with db.transaction() as tx:`` the same methods on one connection in one
        transaction; ``tx.transaction()`` nests a savepoint."""
        return Transaction(self.fast_path)

    async def iterate(
        self, statement: Any, params: Mapping[str, Any] | None = None, *, batch: int = 100
    ) -> AsyncIterator[Row]:
        """Stream rows through a server-side cursor in a read transaction of its own (on a
        replica when one may serve it: never retried mid-stream). Close it early with
        ``contextlib.aclosing``."""
        async with Transaction(self.replicas.read_path(self.fast_path, statement)) as tx:
            async for row in tx.iterate(statement, params, batch=batch):
                yield row
