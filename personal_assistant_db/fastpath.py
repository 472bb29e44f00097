"""The fast path's executor: a compiled statement on the pooled asyncpg connection.

A call checks a connection out of the engine's own (measured) pool, runs the cached prepared
statement on the driver connection and returns it: outside a transaction that is one round
trip, in autocommit, with no BEGIN, no ping inside the bypass window and no ROLLBACK on return
(SQLAlchemy's asyncpg adapter begins transactions lazily, and none was begun).

- Errors are SQLAlchemy's own (``IntegrityError``... wrapping the asyncpg error), built the way
  ``Connection`` builds them; a disconnect invalidates the pool as SQLAlchemy does.
- A cancelled or failed call never returns a connection in an unknown state: it is terminated
  (synchronously, no await under cancellation) and the pool opens a new one when needed.
- A read outside a transaction that fails with a disconnect is retried on a fresh connection
  with backoff within ``DB_READ_RETRY_BUDGET_MS``; writes are never retried.
- What the fast path cannot run exactly goes to the SQLAlchemy path, counted in ``fallbacks``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.util import greenlet_spawn

from .retry import is_disconnect, is_transient
from .statements import Compiled, Row, StatementCache, rowcount_of

if TYPE_CHECKING:
    from .database import Database
    from .telemetry.tracing import QueryObserver

__all__ = ["FastPath", "Lease", "Mode"]

Mode = Literal["all", "one", "val", "exec"]
Params = Mapping[str, Any] | None


def _checkout(engine: Engine) -> Any:
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as err:
        Connection._handle_dbapi_exception_noconnection(err, engine.dialect, engine)


class Lease:
    """One checked-out connection: the pool's fairy, the adapter and the asyncpg connection."""

    __slots__ = ("adapter", "driver", "engine", "fairy")

    def __init__(self, engine: Engine, fairy: Any) -> None:
        self.engine = engine
        self.fairy = fairy
        self.adapter = fairy.dbapi_connection
        self.driver = self.adapter._connection

    @classmethod
    async def acquire(cls, engine: Engine) -> Lease:
        return cls(engine, await greenlet_spawn(_checkout, engine))

    async def release(self, discard: bool = False) -> None:
        """Return to the pool. A connection in an unknown state (a cancelled query, a
        transaction left open) is terminated, synchronously: no await under cancellation.
        Only an overflow connection, which the pool closes on return, is closed in a greenlet
        as SQLAlchemy would; if that is interrupted, it is terminated."""
        fairy = self.fairy
        driver = self.driver
        if discard or not fairy.is_valid or driver.is_closed() or driver.is_in_transaction():
            self.release_now(discard=True)
        elif fairy._pool._pool.full():
            try:
                await greenlet_spawn(fairy.close)
            except BaseException:
                driver.terminate()
                raise
        else:
            fairy.close()  # no IO: the adapter began no transaction, the queue has room

    def release_now(self, discard: bool = False) -> None:
        """Synchronous return; terminates the connection when ``discard`` (or in doubt)."""
        fairy = self.fairy
        try:
            if fairy.is_valid and (discard or self.driver.is_closed()):
                fairy.invalidate()
        finally:
            fairy.close()

    async def prepare(self, sql: str) -> tuple[Any, Any]:
        """(asyncpg PreparedStatement, attributes) from the adapter's own per-connection cache,
        which the SQLAlchemy path shares: a statement is prepared once per connection."""
        adapter = self.adapter
        asof = self.engine.dialect._invalidate_schema_cache_asof  # type: ignore[attr-defined]
        cache = adapter._prepared_statement_cache
        if cache is not None:
            hit = cache.get(sql)
            if hit is not None and hit[2] > asof:
                return hit[0], hit[1]
        prepared: tuple[Any, Any] = await adapter._prepare(sql, asof)
        return prepared

    def error(self, exc: Exception, sql: str, args: Any, many: bool = False) -> Exception:
        """``exc`` as the SQLAlchemy path would raise it; invalidates the pool on disconnect."""
        dialect = self.engine.dialect
        dbapi = dialect.loaded_dbapi
        orig: Exception = exc
        if not isinstance(exc, sa_exc.SQLAlchemyError) and not isinstance(exc, dbapi.Error):
            try:
                self.adapter._handle_exception(exc)
            except Exception as translated:  # the adapter raises the DBAPI form
                orig = translated
        disconnect = (
            isinstance(orig, dbapi.Error) and dialect.is_disconnect(orig, self.adapter, None)
        ) or is_disconnect(orig)
        if disconnect:
            self.engine.pool._invalidate(self.fairy, orig)
        wrapped = sa_exc.DBAPIError.instance(
            sql,
            args,
            orig,
            dbapi.Error,
            hide_parameters=self.engine.hide_parameters,
            connection_invalidated=disconnect,
            dialect=dialect,
            ismulti=many,
        )
        wrapped.__cause__ = orig
        return wrapped


class FastPath:
    """The statement API behind ``Database.fetch_*``, ``execute*``, ``transaction``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: StatementCache | None = None
        #: The telemetry hook (set by Telemetry.instrument); None: neither traced nor measured.
        self.observer: QueryObserver | None = None
        #: Statements that went to the SQLAlchemy path, by reason.
        self.fallbacks: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<FastPath fallbacks={sum(self.fallbacks.values())}>"

    @property
    def engine(self) -> Engine:
        return self._db.engine.sync_engine

    def compiled(
        self, statement: Any, keys: tuple[str, ...], many: bool = False
    ) -> tuple[Compiled | str, Any]:
        engine = self.engine
        cache = self._cache
        if cache is None or cache.dialect is not engine.dialect:
            cache = self._cache = StatementCache(engine.dialect)
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
            raise _statement_error(engine, exc, entry.sql, params) from exc
        budget = self._db.settings.read_retry_budget_ms / 1000 if mode != "exec" else 0.0
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
            discard = True
            try:
                result = await self.execute_on(lease, entry, sql, args, mode)
                discard = False
                return result
            except sa_exc.DBAPIError as exc:
                discard = exc.connection_invalidated
                if not budget or not exc.connection_invalidated:
                    raise
                failure: Exception = exc
            finally:
                await lease.release(discard)
            deadline = deadline or time.monotonic() + budget
            attempt = await self._backoff(failure, attempt, deadline)

    async def _backoff(self, exc: Exception, attempt: int, deadline: float) -> int:
        """Sleep before the next try (full jitter, 20 ms doubling to 400 ms); re-raise ``exc``
        when the budget is spent. Counts the retry."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise exc
        self._db.meter.read_retries += 1
        cap = min(0.4, 0.02 * 2**attempt)
        await asyncio.sleep(min(left, random.uniform(cap / 2, cap)))  # noqa: S311 - jitter
        return attempt + 1

    # -- on a checked-out connection ------------------------------------------------------
    async def execute_on(
        self, lease: Lease, entry: Compiled, sql: str, args: list[Any], mode: Mode
    ) -> Any:
        observer = self.observer
        if observer is None:
            try:
                return await _execute(lease, entry, sql, args, mode)
            except Exception as exc:
                raise lease.error(exc, sql, args) from exc
        stmt = observer.statement(sql)
        span = observer.start(stmt)
        started = time.perf_counter()
        try:
            result = await _execute(lease, entry, sql, args, mode)
        except BaseException as exc:
            failure = lease.error(exc, sql, args) if isinstance(exc, Exception) else exc
            observer.failed(stmt, span, time.perf_counter() - started, _driver_error(failure))
            if failure is exc:
                raise
            raise failure from exc
        observer.succeeded(stmt, span, started)
        return result

    async def run_on(self, lease: Lease, statement: Any, params: Params, mode: Mode) -> Any:
        """``statement`` on ``lease`` (inside a transaction: never retried)."""
        entry, extracted = self.compiled(statement, tuple(sorted(params)) if params else ())
        if isinstance(entry, str):
            return await self.fallback_on(lease, statement, params, mode, entry)
        try:
            sql, args = entry.bind(params, extracted)
        except Exception as exc:
            raise _statement_error(self.engine, exc, entry.sql, params) from exc
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
            raise _statement_error(self.engine, exc, entry.sql, params) from exc
        observer = self.observer
        stmt = observer.statement(sql) if observer is not None else None
        span = observer.start(stmt) if observer is not None and stmt is not None else None
        started = time.perf_counter()
        try:
            prepared, _ = await lease.prepare(sql)
            await prepared.executemany(args)
        except Exception as exc:
            failure = lease.error(exc, sql, args, many=True)
            if observer is not None and stmt is not None:
                observer.failed(stmt, span, time.perf_counter() - started, _driver_error(failure))
            raise failure from exc
        if observer is not None and stmt is not None:
            observer.succeeded(stmt, span, started)

    # -- the SQLAlchemy path ----------------------------------------------------------------
    async def fallback(self, statement: Any, params: Any, mode: Mode, reason: str) -> Any:
        """Run on an SQLAlchemy ``engine.begin()`` connection (commits, like autocommit)."""
        self.fallbacks[reason] += 1
        async with self._db.engine.begin() as conn:
            result = await conn.execute(_executable(statement), params)
            return _shape(result, mode)

    async def fallback_on(
        self, lease: Lease, statement: Any, params: Any, mode: Mode, reason: str
    ) -> Any:
        """Run through a SQLAlchemy ``Connection`` on the leased connection, inside our
        transaction: the adapter is put in autocommit so that SQLAlchemy does not BEGIN."""
        self.fallbacks[reason] += 1
        adapter = lease.adapter
        saved = adapter.isolation_level
        adapter.isolation_level = "autocommit"
        try:
            return await greenlet_spawn(
                _run_sqlalchemy, self.engine, lease.fairy, statement, params, mode
            )
        finally:
            adapter.isolation_level = saved


async def _execute(lease: Lease, entry: Compiled, sql: str, args: list[Any], mode: Mode) -> Any:
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


def _run_sqlalchemy(engine: Engine, fairy: Any, statement: Any, params: Any, mode: Mode) -> Any:
    fairy._checkout_existing()  # Connection.close() must not return it to the pool
    conn = Connection(engine, connection=fairy)
    try:
        return _shape(conn.execute(_executable(statement), params), mode)
    finally:
        conn.close()


def _shape(result: Any, mode: Mode) -> Any:
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


def _executable(statement: Any) -> Any:
    from sqlalchemy import text

    return text(statement) if isinstance(statement, str) else statement


def _statement_error(engine: Engine, exc: Exception, sql: str, params: Any) -> Exception:
    """An error while binding parameters, as ``Connection.execute`` reports it."""
    return sa_exc.DBAPIError.instance(
        sql,
        params,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        dialect=engine.dialect,
    )


def _driver_error(exc: BaseException) -> BaseException:
    """What the query hook saw on the SQLAlchemy path: the DBAPI error under the wrapper."""
    return getattr(exc, "orig", None) or exc
