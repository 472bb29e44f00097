"""The fast path's executor: a compiled statement on the pooled asyncpg connection.

A call checks a connection out of the engine's own (measured) pool, runs the cached prepared
statement on the driver connection and returns it: outside a transaction that is one round
trip, in autocommit, with no BEGIN, no ping inside the bypass window and no ROLLBACK on return
(SQLAlchemy's asyncpg adapter begins transactions lazily, and none was begun).

- Errors are SQLAlchemy's own (``IntegrityError``... wrapping the asyncpg error), built the way
  ``Connection`` builds them; a disconnect invalidates the pool as SQLAlchemy does.
- A cancelled call (task cancelled, ``asyncio.timeout``) stops its statement on the server:
  asyncpg sends a cancel request, and ``Lease.settle`` waits (in a task of its own, the pool
  slot still taken) until the server has ended it, then returns the connection clean, or
  closes it if the server does not answer in time. Terminating the socket alone would leave
  the statement running on a backend the pool no longer counts.
- A failed call never returns a connection in an unknown state: it is terminated
  (synchronously, no await under cancellation) and the pool opens a new one when needed.
- A read outside a transaction that fails with a disconnect is retried on a fresh connection
  with backoff within ``DB_READ_RETRY_BUDGET_MS``; writes are never retried.
- What the fast path cannot run exactly goes to the SQLAlchemy path, counted in ``fallbacks``.

An executor is handed its engine (``attach`` on start, ``detach`` on stop), the settings and
its node's pool meter; it never holds the ``Database`` (the statement path runs one way:
api -> executor -> compiled / lease).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import DatabaseNotStarted, WrongEventLoop
from ..failures import is_transient
from . import fallback
from .compiled import Compiled, StatementCache, rowcount_of
from .fallback import Mode
from .lease import Lease
from .observed import observed

if TYPE_CHECKING:
    from ..pool import PoolMeter
    from ..settings import Settings
    from ..telemetry.tracing import QueryObserver
    from .transaction import Transaction

__all__ = ["FastPath"]

Params = Mapping[str, Any] | None


class FastPath:
    """The statement API behind ``Database.fetch_*``, ``execute*``, ``transaction``."""

    def __init__(self, settings: Settings, meter: PoolMeter, *, retry_reads: bool = True) -> None:
        """``retry_reads``: a read that loses its connection is retried on this node within
        ``DB_READ_RETRY_BUDGET_MS`` (the primary). A replica's executor does not retry: the
        statement API retries once on another node instead (``fastpath/reads.py``)."""
        self.meter = meter
        self._budget = settings.read_retry_budget_ms / 1000 if retry_reads else 0.0
        self._async_engine: AsyncEngine | None = None
        self._engine: Engine | None = None
        self._cache: StatementCache | None = None
        #: Called after a write outside a transaction and after an outermost commit (the
        #: replica set records a read-your-writes mark); None: nothing to record.
        self.on_write: Callable[[], None] | None = None
        #: The telemetry hook (set by Telemetry.instrument); None: neither traced nor measured.
        self.observer: QueryObserver | None = None
        #: Statements that went to the SQLAlchemy path, by reason.
        self.fallbacks: Counter[str] = Counter()
        #: The primary's executor only: the force-rollback pin (pin.py) while one is active.
        self.pin: Transaction | None = None
        #: ``db.connect()`` inside a ``db.transaction()`` block was logged (once).
        self.connect_warned = False
        #: The event loop the engine was attached in (a transaction refuses another loop).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._settling: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"<FastPath fallbacks={sum(self.fallbacks.values())}>"

    def attach(self, engine: AsyncEngine) -> None:
        """Run on ``engine`` from now on (its owner calls this when it creates the engine)."""
        self._async_engine, self._engine = engine, engine.sync_engine
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:  # attached outside a loop: nothing to compare with
            self.loop = None

    def detach(self) -> None:
        """The engine is gone (stop): calls raise DatabaseNotStarted until the next attach."""
        self._async_engine = self._engine = None
        self.loop = None

    @property
    def async_engine(self) -> AsyncEngine:
        engine = self._async_engine
        if engine is None:
            raise DatabaseNotStarted("Database.start() has not run (is the lifespan installed?)")
        return engine

    def check_loop(self) -> None:
        """Raise WrongEventLoop when called from a loop other than the one that started the
        engine (its pooled connections belong to that loop)."""
        loop = self.loop
        if loop is not None and loop is not asyncio.get_running_loop():
            raise WrongEventLoop(
                "the Database was started on another event loop: its pooled connections belong "
                "to that loop; start one Database per event loop (pytest: one loop per session)"
            )

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            raise DatabaseNotStarted("Database.start() has not run (is the lifespan installed?)")
        return engine

    def compiled(
        self, statement: Any, keys: tuple[str, ...], many: bool = False
    ) -> tuple[Compiled | str, Any]:
        engine = self.engine
        cache = self._cache
        if cache is None or cache.dialect is not engine.dialect:
            translate = engine.get_execution_options().get("schema_translate_map")
            cache = self._cache = StatementCache(engine.dialect, translate)
        return cache.get(statement, keys, many)

    # -- outside a transaction --------------------------------------------------------------
    async def run(self, statement: Any, params: Params, mode: Mode) -> Any:
        entry, extracted = self.compiled(statement, tuple(sorted(params)) if params else ())
        if isinstance(entry, str):
            return await self.fallback(statement, params, mode, entry)
        engine = self.engine
        try:
            sql, args = entry.bind(params, extracted)
        except Exception as exc:
            raise fallback.statement_error(engine, exc, entry.sql, params) from exc
        budget = self._budget if mode != "exec" else 0.0
        deadline = 0.0
        attempt = 0
        while True:
            try:
                lease = await Lease.acquire(engine)
            except Exception as exc:
                if not budget or not is_transient(exc):
                    raise
                deadline = deadline or time.monotonic() + budget
                attempt = await self._backoff(exc, attempt, deadline)
                continue
            discard: bool | None = True
            try:
                result = await self.execute_on(lease, entry, sql, args, mode)
                discard = False
                return result
            except sa_exc.DBAPIError as exc:
                discard = exc.connection_invalidated
                if not budget or not exc.connection_invalidated:
                    raise
                failure: Exception = exc
            except asyncio.CancelledError:
                discard = None  # the statement may still run: settle() stops it first
                self._settle(lease)
                raise
            finally:
                if discard is not None:
                    await lease.release(discard)
            deadline = deadline or time.monotonic() + budget
            attempt = await self._backoff(failure, attempt, deadline)

    def _settle(self, lease: Lease) -> None:
        """A caller was cancelled mid-statement: stop the statement on the server before the
        connection goes back (``Lease.settle``, in a task of its own; the slot stays taken
        meanwhile, so the pool never opens a backend beside one still running)."""
        task = asyncio.ensure_future(lease.settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """Wait for the connections of cancelled statements to settle (stop calls this before
        the engine is disposed; each settles within ``SETTLE_TIMEOUT``)."""
        if self._settling:
            await asyncio.wait(set(self._settling))

    async def _backoff(self, exc: Exception, attempt: int, deadline: float) -> int:
        """Sleep before the next try (full jitter, 20 ms doubling to 400 ms); re-raise ``exc``
        when the budget is spent. Counts the retry."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise exc
        self.meter.read_retries += 1
        cap = min(0.4, 0.02 * 2**attempt)
        await asyncio.sleep(min(left, random.uniform(cap / 2, cap)))  # noqa: S311 - jitter
        return attempt + 1

    # -- on a checked-out connection ------------------------------------------------------
    async def execute_on(
        self, lease: Lease, entry: Compiled, sql: str, args: tuple[Any, ...], mode: Mode
    ) -> Any:
        if self.observer is None:  # no telemetry: no extra frame on the hottest path
            try:
                return await _execute(lease, entry, sql, args, mode)
            except Exception as exc:
                failure = lease.error(exc, sql, args)
                raise failure from failure.orig
        work = _execute(lease, entry, sql, args, mode)
        return await observed(self.observer, lease, sql, args, work)

    async def run_on(self, lease: Lease, statement: Any, params: Params, mode: Mode) -> Any:
        """``statement`` on ``lease`` (inside a transaction: never retried)."""
        entry, extracted = self.compiled(statement, tuple(sorted(params)) if params else ())
        if isinstance(entry, str):
            return await self.fallback_on(lease, statement, params, mode, entry)
        try:
            sql, args = entry.bind(params, extracted)
        except Exception as exc:
            raise fallback.statement_error(self.engine, exc, entry.sql, params) from exc
        return await self.execute_on(lease, entry, sql, args, mode)

    async def execute_many_on(
        self, lease: Lease, statement: Any, params: Sequence[Mapping[str, Any]]
    ) -> None:
        """asyncpg's ``executemany`` with SQLAlchemy's compiled INSERT/UPDATE/DELETE."""
        if not params:
            return
        entry, extracted = self.compiled(statement, tuple(sorted(params[0])), many=True)
        if isinstance(entry, str):
            await self.fallback_on(lease, statement, list(params), "exec", entry)
            return
        try:
            sql = entry.sql
            args = [entry.bind(p, extracted)[1] for p in params]
        except Exception as exc:
            raise fallback.statement_error(self.engine, exc, entry.sql, params) from exc
        await observed(self.observer, lease, sql, args, _execute_many(lease, sql, args), many=True)

    # -- the SQLAlchemy path ----------------------------------------------------------------
    async def fallback(self, statement: Any, params: Any, mode: Mode, reason: str) -> Any:
        """Run on the SQLAlchemy path outside a transaction; counted by ``reason``."""
        self.fallbacks[reason] += 1
        return await fallback.run_outside(self.async_engine, statement, params, mode)

    async def fallback_on(
        self, lease: Lease, statement: Any, params: Any, mode: Mode, reason: str
    ) -> Any:
        """Run on the SQLAlchemy path inside our transaction; counted by ``reason``."""
        self.fallbacks[reason] += 1
        return await fallback.run_on_lease(lease, statement, params, mode)


async def _execute(
    lease: Lease, entry: Compiled, sql: str, args: tuple[Any, ...], mode: Mode
) -> Any:
    prepared, attributes = await lease.prepare(sql)
    if mode == "all":
        return entry.rows(attributes, await prepared.fetch(*args))
    if mode == "exec":
        await prepared.fetch(*args)
        return rowcount_of(prepared.get_statusmsg())
    record = await prepared.fetchrow(*args)
    if record is None:
        return None
    row = entry.row(attributes, record)
    return row if mode == "one" else row[0]


async def _execute_many(lease: Lease, sql: str, args: list[Any]) -> None:
    prepared, _ = await lease.prepare(sql)
    await prepared.executemany(args)
