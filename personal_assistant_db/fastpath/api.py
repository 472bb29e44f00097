"""The statement methods of ``Database``: thin calls into its ``FastPath``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from .compiled import Row
from .executor import FastPath
from .transaction import Transaction

__all__ = ["StatementMethods"]


class StatementMethods:
    """Mixed into ``Database``: Core statements and ``text()`` on the fast path."""

    fast_path: FastPath

    async def fetch_all(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Every row of a Core statement or ``text()`` (one round trip, autocommit)."""
        rows: list[Row] = await self.fast_path.run(statement, params, "all")
        return rows

    async def fetch_one(
        self, statement: Any, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        """The first row, or None."""
        row: Row | None = await self.fast_path.run(statement, params, "one")
        return row

    async def fetch_val(self, statement: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        return await self.fast_path.run(statement, params, "val")

    async def execute(self, statement: Any, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement in autocommit; the row count (-1 when the server reports none).
        Never retried."""
        count: int = await self.fast_path.run(statement, params, "exec")
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
        """Stream rows through a server-side cursor in a read transaction of its own. Close it
        early with ``contextlib.aclosing``."""
        async with self.transaction() as tx:
            async for row in tx.iterate(statement, params, batch=batch):
                yield row
