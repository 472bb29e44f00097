"""Database: the facade that owns the engines and hands their parts to whoever needs them.

``start()`` builds the primary's engine (engines.py builds every engine), runs the start hooks
(telemetry, health), gets the first connection as ``DB_STARTUP_MODE`` says (startup.py: retry,
degraded start, warm-up) and starts the replicas. ``stop()`` runs the stop hooks and disposes
every engine. Both are idempotent. ``lifespan`` wraps them for Starlette and yields state under
``STATE_KEY``. The parts are plain attributes: ``settings``, ``meter`` (the primary's pool
counters), ``primary`` and ``nodes`` (each node's engine and pool), ``replicas`` (routing), and
``fast_path`` (the statement API's executor).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engines import build_engine
from .errors import DatabaseNotStarted
from .fastpath import FastPath, ReplicaReads, StatementMethods, note_connect, pinned_connection
from .http_errors import Handler, exception_handlers
from .logs import CauseLog, get_logger
from .pool import PoolMeter, PoolStats
from .replicas.node import Node
from .replicas.replica_set import ReplicaSet
from .sessions import SessionMethods
from .settings import Settings
from .startup import Startup

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["STATE_KEY", "Database", "Hook"]

STATE_KEY = "personal_assistant_db"
T = TypeVar("T")
Hook = Callable[["Database"], Awaitable[None] | None]
log = get_logger()


class Database(StatementMethods, SessionMethods):
    """Owns the AsyncEngine. Create it once per process; hand it to everything that needs it.

    The statement API (``fetch_all``, ``fetch_one``, ``fetch_val``, ``execute``,
    ``execute_many``, ``transaction``, ``iterate``) comes from ``StatementMethods``; ORM
    sessions (``session``, ``sessionmaker``) from ``SessionMethods`` (sessions.py).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.meter = PoolMeter()
        self.meter.ping_bypass = settings.pool_ping_bypass_ms / 1000
        self.meter.on_timeout.append(self._log_pool_timeout)
        #: Rate-limited log of transient failures served as 503 (http_errors.py).
        self.unavailable_log = CauseLog(settings.error_log_interval)
        self._pool_timeout_log = CauseLog(settings.error_log_interval, event="db.pool.timeout")
        self._engine: AsyncEngine | None = None
        self._startup = Startup(settings, lambda: self.engine)
        self._lock = asyncio.Lock()
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self.started_in: float | None = None
        #: The primary's node (its engine is ``engine``) and the read replicas (replicas/).
        self.primary = Node(settings.url, "primary", meter=self.meter)
        self.replicas = ReplicaSet(settings, self.primary)
        #: The statement API's executor on the primary (fetch_*, execute*, transaction): it is
        #: handed the engine on start and never reaches back here (fastpath/).
        self.fast_path = FastPath(settings, self.meter)
        #: With replicas only: one executor per replica and the read routing (fastpath/reads.py).
        self.replica_reads = (
            ReplicaReads(self.fast_path, self.replicas, settings) if self.replicas.enabled else None
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Database:
        """Settings from ``DATABASE_URL`` and ``DB_*``; nothing connects until ``start()``."""
        return cls(Settings.from_env(environ, **overrides))

    def __repr__(self) -> str:
        state = "ready" if self.ready else "started" if self._engine else "stopped"
        return f"<Database {self.settings.safe_url} {state}>"

    # -- state -----------------------------------------------------------------------------
    @property
    def engine(self) -> AsyncEngine:
        """The engine; raises DatabaseNotStarted before ``start()`` and after ``stop()``."""
        if self._engine is None:
            raise DatabaseNotStarted("Database.start() has not run (is the lifespan installed?)")
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None

    @property
    def ready(self) -> bool:
        """True once a connection succeeded (in degraded mode: after recovery)."""
        return self._startup.ready

    def pool_stats(self) -> PoolStats:
        """A snapshot of the primary's pool (the pool object changes on ``dispose()``)."""
        return self.meter.snapshot(self.engine.pool)

    @property
    def nodes(self) -> list[Node]:
        """The primary's node, then each replica's (each with its own measured pool)."""
        return [self.primary, *self.replicas.nodes]

    def add_hooks(self, *, on_start: Hook | None = None, on_stop: Hook | None = None) -> None:
        """Run ``on_start`` after the engine exists (before the first connection) and ``on_stop``
        before it is disposed. Telemetry and health attach here; they never create an engine."""
        if on_start is not None:
            self._on_start.append(on_start)
        if on_stop is not None:
            self._on_stop.insert(0, on_stop)

    # -- use -------------------------------------------------------------------------------
    def connect(self) -> AsyncConnection:
        """``async with db.connect() as conn:`` a pooled connection (no implicit commit). Inside
        a ``db.transaction()`` block it is a separate connection, outside the transaction
        (logged once); under ``force_rollback()`` the pinned one, in a savepoint."""
        if self.fast_path.pin is not None:
            return pinned_connection(self.fast_path.pin, begin=False)
        note_connect(self.fast_path)
        return self.engine.connect()

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """``async with db.begin() as conn:`` a connection in a transaction that commits, on the
        primary. With replicas or a multi-host URL, a checkout that finds no read-write primary
        raises PrimaryUnavailable (never retried), and in ``lsn`` mode the commit's WAL position
        is recorded for read-your-writes."""
        if self.fast_path.pin is not None:
            return pinned_connection(self.fast_path.pin, begin=True)
        if self.replicas.failover:
            return self.replicas.begin(self.engine)
        return self.engine.begin()

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """``async with db.read() as conn:`` a connection for reads: a healthy replica that has
        this session's writes (read-your-writes), else the primary. Replica sessions are
        read-only. Without ``DATABASE_REPLICA_URLS``: the primary."""
        self.engine  # noqa: B018 - raises DatabaseNotStarted before start()
        return self.replicas.read()

    async def run_read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``await work(conn)`` on a read connection (as ``read()``); if a replica's connection
        is lost mid-read, ``work`` runs once more on another node. Keep ``work`` read-only."""
        self.engine  # noqa: B018 - raises DatabaseNotStarted before start()
        return await self.replicas.run_read(work)

    def exception_handlers(self) -> dict[Any, Handler]:
        """``Starlette(exception_handlers=db.exception_handlers())``: transient database failures
        become 503 + Retry-After + problem+json; anything else stays a 500 (http_errors.py)."""
        return exception_handlers(self)

    def health_app(self, **kwargs: Any) -> Starlette:
        """The /health Starlette app for this database: ``health.health_app(self, **kwargs)``."""
        from .health import health_app

        return health_app(self, **kwargs)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the engine, connect (with retry), warm up. Idempotent."""
        async with self._lock:
            if self._engine is not None:
                return
            began = time.perf_counter()
            self._engine = self._create_engine()
            for hook in self._on_start:
                await _call(hook, self)
            try:
                await self._startup.run()
            except BaseException:
                await self._dispose()
                raise
            await self.replicas.start()
            self.started_in = time.perf_counter() - began
            log.info(
                "db.engine.start",
                url=self.settings.safe_url,
                ready=self.ready,
                ms=round(self.started_in * 1000, 1),
                pool_size=self.settings.pool_size,
                max_overflow=self.settings.max_overflow,
                pooler=self.settings.pooler,
            )

    async def stop(self) -> None:
        """Stop reconnecting, run stop hooks, dispose the engine. Idempotent."""
        async with self._lock:
            if self._engine is None:
                return
            await self._startup.stop()
            for hook in self._on_stop:
                await _call(hook, self)
            await self._dispose()

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[dict[str, Any]]:
        """Starlette lifespan: start, yield ``{STATE_KEY: self}``, stop."""
        await self.start()
        try:
            yield {STATE_KEY: self}
        finally:
            await self.stop()

    # -- internals -------------------------------------------------------------------------
    def _create_engine(self) -> AsyncEngine:
        s = self.settings
        engine = build_engine(s, "primary", s.async_url, self.meter)
        self.primary.engine = engine
        self.replicas.create_engines()
        self.fast_path.attach(engine)
        if self.replica_reads is not None:
            self.replica_reads.attach()
        return engine

    async def _dispose(self) -> None:
        engine, self._engine, self._startup.ready = self._engine, None, False
        self.primary.engine = None
        await self.fast_path.drain()  # cancelled statements settle before the pool goes
        self.fast_path.detach()
        if self.replica_reads is not None:
            await self.replica_reads.drain()
            self.replica_reads.detach()
        await self.replicas.stop()
        if engine is not None:
            await engine.dispose()
            log.info("db.engine.dispose", url=self.settings.safe_url)

    def _log_pool_timeout(self) -> None:
        if self._engine is not None:
            stats = self.pool_stats().as_dict()
            self._pool_timeout_log.record("pool_timeout", **stats)


async def _call(hook: Hook, db: Database) -> None:
    result = hook(db)
    if result is not None:
        await result
