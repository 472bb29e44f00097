"""The replicas a Database owns: their engines, the lag monitor, the router and the read path.

The Database creates one ``ReplicaSet`` and stays the one owner: ``start()`` creates one measured
engine per replica (sessions read-only), takes a first lag verdict and starts the monitor;
``stop()`` stops the monitor and disposes the engines. Without ``DATABASE_REPLICA_URLS`` it holds
no node and every read goes to the primary at no cost.

Writes are tracked for read-your-writes: ``Database.begin()`` records the primary's
``pg_current_wal_lsn()`` after its commit (one round trip on the same connection); a commit on a
``db.connect()`` connection is seen by the engine's ``commit`` event and recorded, pending, when
the connection goes back to the pool (after the commit has completed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..engines import build_engine
from ..errors import PrimaryUnavailable
from ..logs import get_logger
from ..settings import Settings
from .consistency import record_write, resolve_pending
from .lag import LagMonitor
from .node import Node
from .reads import ReadConnection, is_connection_lost, release
from .router import Router, is_write
from .writes import flag_commit, no_writable_host, record_pending, wal_position

__all__ = ["ReplicaSet"]

T = TypeVar("T")
log = get_logger()


class ReplicaSet:
    """Replica nodes of one Database, and how reads choose among them and the primary."""

    def __init__(self, settings: Settings, primary: Node) -> None:
        self.settings = settings
        self.primary = primary
        self.nodes = [Node(url, "replica") for url in settings.replica_urls]
        self.router = Router(
            self.nodes, settings.read_your_writes.mode, settings.read_your_writes.window
        )
        interval = settings.replica_check_interval
        self.monitor = LagMonitor(
            primary,
            self.nodes,
            self.router,
            interval=interval,
            max_lag_ms=settings.replica_max_lag_ms,
            timeout=min(interval, settings.health_timeout),
        )
        self._tracked: Any = None
        #: Writes refused with PrimaryUnavailable since start.
        self.primary_unavailable = 0
        self._primary_down_since: float | None = None

    def __repr__(self) -> str:
        return f"<ReplicaSet {[n.name for n in self.nodes]}>"

    @property
    def enabled(self) -> bool:
        return bool(self.nodes)

    @property
    def tracks_lsn(self) -> bool:
        """Writes through ``Database.begin()`` record the commit LSN (lsn mode with replicas)."""
        return self.enabled and self.router.mode == "lsn"

    # -- lifecycle -------------------------------------------------------------------------
    def create_engines(self) -> None:
        """One measured engine per replica (read-only sessions); the Database calls this right
        after creating its own, before its start hooks (so telemetry sees every engine)."""
        for node in self.nodes:
            if node.engine is None:
                node.engine = build_engine(self.settings, "replica", node.url, node.meter)

    async def start(self) -> None:
        """Track commits, take a first (bounded) lag verdict, start the monitor."""
        if not self.enabled:
            return
        self.create_engines()
        self._track_commits()
        # A first verdict before serving (it opens the first connections), bounded; an
        # unreachable replica never fails start, it just starts out of rotation.
        first = asyncio.ensure_future(self.monitor.check_now())
        bound = min(self.settings.connect_timeout, max(1.0, self.monitor.timeout * 2))
        done, _ = await asyncio.wait({first}, timeout=bound)
        if not done:
            first.add_done_callback(lambda t: t.exception())
        self.monitor.start()
        log.info(
            "db.replicas.start",
            replicas={n.name: n.state for n in self.nodes},
            read_your_writes=self.settings.read_your_writes,
        )

    async def stop(self) -> None:
        """Stop the monitor and commit tracking, dispose every replica engine. Idempotent."""
        await self.monitor.stop()
        self._untrack_commits()
        for node in self.nodes:
            engine, node.engine = node.engine, None
            if engine is not None:
                await engine.dispose()
            node.state = "starting"
            node.caught_up_at = None
            node.logged_state = None

    # -- write tracking ----------------------------------------------------------------------
    def _track_commits(self) -> None:
        engine = self.primary.engine
        if engine is None or self.router.mode == "off" or self._tracked is engine:
            return
        sync = engine.sync_engine
        event.listen(sync, "commit", flag_commit)
        event.listen(sync, "checkin", record_pending)
        self._tracked = engine

    def _untrack_commits(self) -> None:
        engine, self._tracked = self._tracked, None
        if engine is not None:
            sync = engine.sync_engine
            event.remove(sync, "commit", flag_commit)
            event.remove(sync, "checkin", record_pending)

    @property
    def failover(self) -> bool:
        """Replicas or several hosts in DATABASE_URL: writes go through ``begin()`` below."""
        return self.enabled or isinstance(self.settings.url.query.get("host"), tuple)

    @asynccontextmanager
    async def begin(self, primary: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """``engine.begin()`` on the primary. A failed checkout (no read-write primary) raises
        PrimaryUnavailable; in ``lsn`` mode the commit's WAL position is recorded after it."""
        conn = primary.connect()
        try:
            await conn.start()
        except Exception as exc:
            if not (is_connection_lost(exc) or no_writable_host(exc)):
                raise
            cause = type(exc).__name__
            self.primary_unavailable += 1
            if self._primary_down_since is None:  # one line per outage, not per write
                self._primary_down_since = time.monotonic()
                log.warning("db.primary.unavailable", cause=cause, url=self.settings.safe_url)
            raise PrimaryUnavailable(
                f"no read-write primary accepted a connection at {self.settings.safe_url} "
                f"({cause}): the transaction was not started; retry once a primary is back",
                cause=cause,
            ) from exc
        if self._primary_down_since is not None:
            down = time.monotonic() - self._primary_down_since
            self._primary_down_since = None
            log.warning("db.primary.back", after_s=round(down, 3), refused=self.primary_unavailable)
        lsn: int | None = None
        try:
            async with conn.begin():
                yield conn
            if self.tracks_lsn:
                try:
                    lsn = await wal_position(conn)
                except Exception as exc:
                    # Committed: the caller must not see a failure. Reads go to the primary
                    # until the mark is resolved (pending), and the connection is dropped.
                    log.warning("db.write.lsn_unknown", error_class=type(exc).__name__)
                    record_write(None)
                    await conn.invalidate()
        finally:
            await release(conn)
        if lsn is not None:
            record_write(lsn)

    async def resolve_pending(self) -> None:
        """Give the session's pending mark the primary's current WAL position (one query)."""
        engine = self.primary.started_engine()
        async with engine.connect() as conn:
            value = await wal_position(conn)
        if value is not None:
            resolve_pending(value)

    # -- reads -------------------------------------------------------------------------------
    def choose(self, exclude: Node | None = None) -> Node:
        node = self.router.choose(exclude) if self.nodes else None
        return node if node is not None else self.primary

    def read(self) -> ReadConnection:
        """A connection on a replica that may serve this read (else the primary): see
        ``ReadConnection``."""
        return ReadConnection(self)

    # -- the statement API (fastpath/reads.py asks; this only chooses) -----------------------
    def wrote(self) -> None:
        """A statement-API write committed: a pending read-your-writes mark (no extra round
        trip; reads go to the primary until the monitor samples the primary after it)."""
        if self.nodes and self.router.mode != "off":
            record_write(None)

    def route(self, statement: Any, exclude: Node | None = None) -> Node | None:
        """The replica that should serve a read of ``statement``, or None: the primary (the
        statement writes, or no replica may serve it; the reason is counted)."""
        if is_write(statement):
            return None
        return self.router.choose(exclude)

    def lost(self, node: Node, reason: str) -> None:
        """``node``'s connection was lost during a read: out of rotation until the monitor
        sees it again; the read is retried once elsewhere (counted in ``router.retries``)."""
        self.router.retries += 1
        self.monitor.note_unreachable(node, reason)

    async def run_read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``await work(conn)`` on a read connection; when the connection is lost mid-read on a
        replica, once more on another node (counted in ``router.retries``)."""
        node = self.choose()
        try:
            return await self._run_on(node, work)
        except Exception as exc:
            if node is self.primary or not is_connection_lost(exc):
                raise
            self.lost(node, type(exc).__name__)
        return await self._run_on(self.choose(exclude=node), work)

    async def _run_on(self, node: Node, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        engine = node.started_engine()
        node.in_flight += 1
        node.reads += 1
        try:
            async with engine.connect() as conn:
                return await work(conn)
        finally:
            node.in_flight -= 1

    async def _connect(self, node: Node, last_try: bool = False) -> AsyncConnection | None:
        conn = node.started_engine().connect()
        try:
            await conn.start()
        except Exception as exc:
            if last_try or node is self.primary or not is_connection_lost(exc):
                raise
            return None
        return conn
