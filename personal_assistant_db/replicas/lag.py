"""The lag monitor: one bounded query per replica per interval, and one on the primary.

Per replica (one round trip on a pooled connection, straight on the driver: no BEGIN, no ROLLBACK,
not traced)::

    pg_is_in_recovery(), pg_last_wal_replay_lsn(),
    0 when receive LSN = replay LSN, else now() - pg_last_xact_replay_timestamp()

The correction keeps an idle primary from reading as growing lag (postgres_exporter does the
same). A second bound handles the other side of it: when a primary that idled writes again, the
first WAL not yet replayed makes ``now() - pg_last_xact_replay_timestamp()`` the whole idle time;
but that WAL cannot be older than the last check that saw the replica fully caught up, so the lag
is at most the time since that check (``Node.observe`` takes the smaller bound).

On the primary, ``pg_current_wal_lsn()``: lag in bytes is its position minus the replica's replay
position, and the router uses the sample (with the time its query started) to resolve
read-your-writes marks whose position was not known.

A replica further behind than ``DB_REPLICA_MAX_LAG_MS``, not in recovery (a primary behind a
replica URL) or not answering within the check timeout leaves rotation; the next good check puts
it back. A check that overruns is never cancelled (a cancelled checkout can leak a connection):
the node is marked unreachable and the next check waits for that one to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from ..logs import get_logger
from .node import LagSample, Node, lsn_to_int
from .router import Router

__all__ = ["PRIMARY_SQL", "REPLICA_SQL", "LagMonitor"]

REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), "
    "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8"
)
PRIMARY_SQL = "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END"
log = get_logger()


async def _fetchrow(node: Node, sql: str, limit: float) -> tuple[object, ...]:
    if node.engine is None:
        raise RuntimeError("node stopped")
    async with node.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        try:
            row = await raw.driver_connection.fetchrow(sql, timeout=limit)  # type: ignore[union-attr]
        except BaseException:
            await conn.invalidate()
            raise
    return tuple(row)


class LagMonitor:
    """Background checks of every replica (and the primary's WAL position) each ``interval``."""

    def __init__(
        self,
        primary: Node,
        replicas: Sequence[Node],
        router: Router,
        *,
        interval: float,
        max_lag_ms: int,
        timeout: float,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.router = router
        self.interval = interval
        self.max_lag_seconds = max_lag_ms / 1000
        self.timeout = timeout
        self.primary_lsn: int | None = None
        self.queries = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<LagMonitor {len(self.replicas)} replicas every {self.interval:g}s>"

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    def start(self) -> None:
        if self.running or not self.replicas:
            return
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._loop(None), name="pa-db-lag-primary")]
        self._tasks += [
            asyncio.create_task(self._loop(node), name=f"pa-db-lag-{node.name}")
            for node in self.replicas
        ]

    async def stop(self) -> None:
        """Stop after the checks in flight end (bounded); cancel only past that bound."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.timeout + 1.0)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def check_now(self) -> None:
        """One round of every check (tests and start-up use it to have a first verdict)."""
        await self._check_primary()
        await asyncio.gather(*(self._check_replica(node) for node in self.replicas))

    def note_unreachable(self, node: Node, reason: str) -> None:
        """A read lost its connection to ``node``: out of rotation until a check passes."""
        self._transition(node, node.unreachable(), reason=reason)

    async def _loop(self, node: Node | None) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            check = self._check_primary() if node is None else self._check_replica(node)
            task = asyncio.ensure_future(check)
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
            if not done:
                if node is not None:
                    self._transition(node, node.unreachable(), reason="check timed out")
                with contextlib.suppress(Exception):
                    await task
            wait = self.interval - (time.monotonic() - began)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)

    async def _check_primary(self) -> None:
        started = time.monotonic()
        self.queries += 1
        try:
            (lsn,) = await _fetchrow(self.primary, PRIMARY_SQL, self.timeout)
        except Exception as exc:  # the primary's own health is readiness's business
            log.debug("db.lag.primary_failed", error_class=type(exc).__name__)
            return
        self.primary_lsn = lsn_to_int(lsn) if isinstance(lsn, str) else None
        if self.primary_lsn is not None:
            self.router.primary_sample = (self.primary_lsn, started)

    async def _check_replica(self, node: Node) -> None:
        self.queries += 1
        checked_at = time.monotonic()
        try:
            in_recovery, replay, caught_up, seconds = await _fetchrow(
                node, REPLICA_SQL, self.timeout
            )
        except Exception as exc:
            self._transition(node, node.unreachable(), reason=type(exc).__name__)
            return
        replay_lsn = lsn_to_int(replay) if isinstance(replay, str) else None
        lag_bytes = None
        if replay_lsn is not None and self.primary_lsn is not None:
            lag_bytes = max(0, self.primary_lsn - replay_lsn)
        sample = LagSample(
            in_recovery=bool(in_recovery),
            replay_lsn=replay_lsn,
            lag_bytes=lag_bytes,
            lag_seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            caught_up=caught_up is True,
            checked_at=checked_at,
        )
        self._transition(node, node.observe(sample, self.max_lag_seconds), reason=None)

    def _transition(self, node: Node, after: str, *, reason: str | None) -> None:
        """Log a change of ``node``'s verdict (once per change, not once per check)."""
        if node.logged_state == after:
            return
        node.logged_state = after
        if after == "not_in_recovery":
            log.error(
                "db.replica.is_primary",
                replica=node.name,
                hint="this replica URL points at a primary: it gets no reads (and its sessions "
                "are read-only, so no writes either)",
            )
        emit = log.info if after == "ok" else log.warning
        emit(
            "db.replica.in_rotation" if after == "ok" else "db.replica.out_of_rotation",
            replica=node.name,
            state=after,
            reason=reason,
            lag_ms=None if node.lag_seconds is None else round(node.lag_seconds * 1000, 1),
            lag_bytes=node.lag_bytes,
        )
