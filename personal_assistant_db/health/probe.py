"""GuardedProbe: a database probe with a checkout wait and a deadline, and no cancellation.

An asyncio cancel around a checked-out asyncpg connection has leaked connections (SQLAlchemy
issues 6652, 8145, 12077; docs/field-notes.md).
So the probe:

1. never queues behind requests: when every slot is checked out it runs ``reserved`` work on a
   *reserved connection* of its own (opened with the engine's URL and connect arguments, outside
   the pool, bounded by asyncpg's ``timeout=``, closed once the pool has room again), so a
   saturated pool can never hide a dead database (issue 11);
2. otherwise runs in a task with ``SET LOCAL statement_timeout`` (server-side timeout);
3. is waited for ``checkout_timeout`` (checkout) and the deadline (query); past either the caller
   gets ``fail`` and the task is *abandoned*, never cancelled: it ends on the server/driver
   timeouts and returns its connection. At most one probe per check is in flight; the next probe
   that finds it still running aborts its socket (``terminate()``, not a cancel: the query fails
   at once and SQLAlchemy discards that connection), so a frozen backend costs one or two failed
   probes, not ``DB_COMMAND_TIMEOUT`` of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .reserved import ReservedConnection
from .result import CheckResult, failure

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["GuardedProbe", "ReservedWork", "Work", "reserved_server_version", "server_version"]

Work = Callable[[AsyncConnection], Awaitable[Any]]
#: Work on the reserved (raw asyncpg) connection: ``(connection, timeout) -> value``.
ReservedWork = Callable[[Any, float], Awaitable[Any]]


class GuardedProbe:
    """Runs ``work`` on a pooled connection within a checkout wait and a deadline, no cancels."""

    def __init__(self, db: Database, *, statement_timeout: float) -> None:
        self.db = db
        self.statement_timeout_ms = max(1, int(statement_timeout * 1000))
        self._task: asyncio.Task[Any] | None = None
        self.abandoned = 0  # probes that outlived a deadline (they finish on their own)
        self.aborted = 0  # stuck probes whose socket the next probe aborted
        self._driver: Any = None  # the in-flight probe's driver (asyncpg) connection
        self.reserved = ReservedConnection(db)

    async def run(
        self,
        name: str,
        work: Work,
        *,
        checkout_timeout: float,
        deadline: float,
        reserved: ReservedWork | None = None,
    ) -> tuple[Any, float] | CheckResult:
        """``(work's value, query seconds)``, or a ``warn``/``fail`` CheckResult."""
        began = time.perf_counter()
        try:
            stats = self.db.pool_stats()
        except Exception as exc:  # DatabaseNotStarted
            return failure(name, began, exc, "database not started", component_type="datastore")
        if stats.used >= stats.capacity:  # (waiters while slots are free are connecting)
            if reserved is None:
                reason = "pool saturated; probe skipped"
                return CheckResult(
                    name=name,
                    status="warn",
                    duration=time.perf_counter() - began,
                    component_type="datastore",
                    reason=reason,
                    details={"reason": reason},
                )
            try:
                return await self.reserved.run(reserved, deadline)
            except Exception as exc:
                return failure(
                    name,
                    began,
                    exc,
                    "probe failed (reserved connection)",
                    component_type="datastore",
                )
        await self.reserved.close()  # the pool has room again: give the session back
        if self._task is not None and not self._task.done():
            # A probe still running past its deadline is stuck on a backend that does not answer
            # (frozen: statement_timeout cannot fire). Abort its socket, never cancel the task:
            # the query fails at once, SQLAlchemy discards that connection, and the next probe
            # runs on a fresh one instead of waiting out DB_COMMAND_TIMEOUT.
            self._abort_stuck()
            return failure(
                name,
                began,
                None,
                "previous probe still running",
                error_class="ProbeInFlight",
                component_type="datastore",
            )
        checked_out = asyncio.Event()
        task = asyncio.create_task(self._probe(work, checked_out), name=f"pa-db-health:{name}")
        task.add_done_callback(_consume)
        self._task = task
        waiter = asyncio.create_task(checked_out.wait())
        try:
            await asyncio.wait(
                {task, waiter}, timeout=checkout_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()  # an Event wait holds nothing; safe to cancel
        if not task.done() and not checked_out.is_set():
            self.abandoned += 1
            return failure(
                name,
                began,
                None,
                "no connection within the checkout wait",
                error_class="CheckoutWaitExceeded",
                component_type="datastore",
            )
        remaining = deadline - (time.perf_counter() - began)
        if not task.done():
            await asyncio.wait({task}, timeout=max(0.0, remaining))
        if not task.done():
            self.abandoned += 1
            return failure(
                name,
                began,
                None,
                "deadline exceeded",
                error_class="DeadlineExceeded",
                component_type="datastore",
            )
        error = task.exception()
        if error is not None:
            return failure(name, began, error, "probe failed", component_type="datastore")
        value, seconds = task.result()
        return value, seconds

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for an in-flight (maybe abandoned) probe; True if none runs.

        The Database calls this (through the monitor's stop hook) before disposing the engine: a
        probe that returned its connection after ``dispose()`` would leave it open and unowned.
        """
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=seconds)  # bounded, never a cancel
        await self.reserved.close()
        return task is None or task.done()

    def _abort_stuck(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None and hasattr(driver, "terminate"):
            self.aborted += 1
            driver.terminate()

    async def _probe(self, work: Work, checked_out: asyncio.Event) -> tuple[Any, float]:
        async with self.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            self._driver = raw.driver_connection
            checked_out.set()
            # Marked as a health probe: telemetry neither traces nor measures it.
            await conn.execution_options(pa_db_health=True)
            await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}")
            began = time.perf_counter()
            value = await work(conn)
            self._driver = None
            return value, time.perf_counter() - began


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned probe's error is no "never retrieved" warning


async def reserved_server_version(conn: Any, budget: float) -> str:
    """``server_version`` on the reserved (raw asyncpg) connection, bounded by ``budget`` s."""
    return str(await conn.fetchval("SELECT current_setting('server_version')", timeout=budget))


async def server_version(conn: AsyncConnection) -> str:
    result = await conn.exec_driver_sql("SELECT current_setting('server_version')")
    return str(result.scalar_one())
