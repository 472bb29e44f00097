"""Which transaction a statement-API call joins: the ambient one, the pinned one, or none.

Inside ``async with db.transaction():`` the block's task carries the transaction in a contextvar;
the statement API (``fetch_*``, ``execute*``, ``iterate``) and a nested ``db.transaction()`` of
the same ``Database`` in the same task join it. A child task copies the contextvar but does not
join (``tx.task`` is checked): it runs on a connection of its own, unless it is handed ``tx``.
While ``db.force_rollback()`` is active, every call of any task that joins nothing joins the
pinned transaction instead. Outside both, a call costs one contextvar read and one attribute read.

``CallLock`` serializes the calls on one connection: the round trips of several tasks that share a
transaction take turns (asyncpg would refuse a second one in flight), and a savepoint block keeps
the connection for its task (and the tasks it starts) until it ends.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING

from ..logs import get_logger

if TYPE_CHECKING:
    from .executor import FastPath
    from .transaction import Transaction

__all__ = ["CallLock", "current", "joined", "note_connect"]

log = get_logger()

#: The innermost ``db.transaction()`` block of the running task (any Database).
current: ContextVar[Transaction | None] = ContextVar("pa_db_transaction", default=None)


def joined(scope: FastPath) -> Transaction | None:
    """The transaction a call on the Database whose primary executor is ``scope`` joins: its
    ambient transaction if this task opened it, else its force-rollback pin, else None."""
    tx = current.get()
    if tx is not None and tx.scope is scope and tx.task is asyncio.current_task():
        return tx
    return scope.pin


def note_connect(scope: FastPath) -> None:
    """``db.connect()`` inside this task's ``db.transaction()`` block is a separate connection:
    say so once per Database (a common surprise: its writes are not rolled back with the block)."""
    tx = current.get()
    if scope.connect_warned or tx is None or tx.scope is not scope:
        return
    if tx.task is asyncio.current_task():
        scope.connect_warned = True
        log.warning(
            "db.connect.outside_transaction",
            hint="db.connect() inside `async with db.transaction():` opens a separate connection, "
            "outside the transaction; use the statement API (it joins) or the block's `tx`",
        )


_marks: ContextVar[tuple[object, ...]] = ContextVar("pa_db_blocks_held", default=())


class CallLock:
    """Turns on one connection.

    - A round trip (``async with lock:``) runs alone on the connection.
    - A block (``hold()``: a savepoint, a ``db.connect()`` block under a pin) keeps the
      connection for the task that opened it and the tasks it starts inside the block (they
      inherit its mark through the context): others wait until it ends, so savepoints of
      different tasks never interleave (a RELEASE would end the other task's savepoint too).
    """

    __slots__ = ("_block", "_depth", "_io", "_mark")

    def __init__(self) -> None:
        self._block = asyncio.Lock()
        self._io = asyncio.Lock()
        self._mark: object | None = None
        self._depth = 0

    def __repr__(self) -> str:
        return f"<CallLock block={self._depth} io={self._io.locked()}>"

    def _mine(self) -> bool:
        mark = self._mark
        return mark is not None and mark in _marks.get()

    async def hold(self) -> Token[tuple[object, ...]] | None:
        """Keep the connection for this task (and its children) until ``unhold``."""
        if self._mine():
            self._depth += 1
            return None
        await self._block.acquire()
        self._mark, self._depth = object(), 1
        return _marks.set((*_marks.get(), self._mark))

    def unhold(self, token: Token[tuple[object, ...]] | None) -> None:
        if token is not None:
            try:
                _marks.reset(token)
            except ValueError:  # released in another context: drop our mark there
                _marks.set(tuple(m for m in _marks.get() if m is not self._mark))
        self._depth -= 1
        if self._depth <= 0:
            self._mark, self._depth = None, 0
            self._block.release()

    async def __aenter__(self) -> None:
        block, io = self._block, self._io
        while True:
            if block.locked() and not self._mine():
                async with block:  # another task's block: wait for its end
                    pass
                continue
            await io.acquire()
            if block.locked() and not self._mine():  # a block began while we queued
                io.release()
                continue
            return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._io.release()
