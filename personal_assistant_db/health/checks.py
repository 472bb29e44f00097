"""Checks are data: a small object with ``async run()`` that returns a ``CheckResult``.

Nothing here renders or caches (runner.py and render.py do). A check never raises: a failure
becomes a ``fail`` result whose public part carries no server text, with the real cause logged
under a correlation id (``error_id``) that the public output shows too.

The database checks never wait the pool's own ``pool_timeout`` and never cancel a checked-out
asyncpg connection (FIELD_NOTES: cancellation has leaked connections). ``GuardedProbe``:

1. reports a saturated pool (every slot checked out) as ``warn`` without checking out at all;
2. runs the probe in a task with ``SET LOCAL statement_timeout`` (server-side timeout);
3. waits ``checkout_timeout`` for the checkout and the check deadline for the query; past either
   it answers ``fail`` and *abandons* the task (never cancels it): the task finishes on the
   server/driver timeouts and returns its connection. At most one probe per check is in flight.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from ..logging import get_logger

if TYPE_CHECKING:
    from ..database import Database

__all__ = [
    "Check",
    "CheckResult",
    "DatabaseCheck",
    "GuardedProbe",
    "LivenessCheck",
    "MigrationsCheck",
    "PoolCheck",
    "Status",
    "failure",
    "worst",
]

Status = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}
log = get_logger()


def worst(statuses: list[Status]) -> Status:
    """The most severe status (``pass`` for none)."""
    return max(statuses, key=_RANK.__getitem__, default="pass")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``counts`` are public numbers; ``details`` need the token."""

    name: str
    status: Status
    duration: float
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    component_type: str = "component"
    time: str = field(default_factory=_now)
    error_id: str | None = None
    counts: Mapping[str, float | int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Check(Protocol):
    """What the runner needs. ``name`` is the health+json key, ``component:measurement``."""

    name: str
    timeout: float  # seconds; the runner never waits longer for this check
    critical: bool  # a failing non-critical check makes the response ``warn``, not ``fail``

    async def run(self) -> CheckResult: ...


def failure(
    name: str, began: float, exc: BaseException | None, reason: str, **kw: Any
) -> CheckResult:
    """A ``fail`` result with a fresh correlation id; the real cause goes to the log only."""
    error_id = uuid.uuid4().hex[:12]
    log.warning(
        "health.check.failed",
        check=name,
        error_id=error_id,
        reason=reason,
        error_class=type(exc).__name__ if exc else None,
        error=str(exc)[:500] if exc else None,
    )
    details = {"reason": reason, "error_class": type(exc).__name__ if exc else None}
    return CheckResult(
        name=name,
        status="fail",
        duration=time.perf_counter() - began,
        error_id=error_id,
        details=details,
        **kw,
    )


@dataclass
class LivenessCheck:
    """Process and event loop only (never the database): loop lag of one scheduling round."""

    name: str = "process:eventLoopLag"
    timeout: float = 0.5
    critical: bool = True
    started: float = field(default_factory=time.monotonic)

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        await asyncio.sleep(0)
        lag = time.perf_counter() - began
        return CheckResult(
            name=self.name,
            status="pass",
            duration=lag,
            observed_value=round(lag * 1000, 3),
            observed_unit="ms",
            component_type="system",
            counts={"uptime_s": round(time.monotonic() - self.started, 1)},
        )


Work = Callable[[AsyncConnection], Awaitable[Any]]


class GuardedProbe:
    """Runs ``work`` on a pooled connection within a checkout wait and a deadline, no cancels."""

    def __init__(self, db: Database, *, statement_timeout: float) -> None:
        self.db = db
        self.statement_timeout_ms = max(1, int(statement_timeout * 1000))
        self._task: asyncio.Task[Any] | None = None
        self.abandoned = 0  # probes that outlived a deadline (they finish on their own)

    async def run(
        self, name: str, work: Work, *, checkout_timeout: float, deadline: float
    ) -> tuple[Any, float] | CheckResult:
        """``(work's value, query seconds)``, or a ``warn``/``fail`` CheckResult."""
        began = time.perf_counter()
        try:
            stats = self.db.pool_stats()
        except Exception as exc:  # DatabaseNotStarted
            return failure(name, began, exc, "database not started", component_type="datastore")
        if stats.used >= stats.capacity:  # (waiters while slots are free are connecting)
            return CheckResult(
                name=name,
                status="warn",
                duration=time.perf_counter() - began,
                component_type="datastore",
                details={"reason": "pool saturated; probe skipped"},
            )
        if self._task is not None and not self._task.done():
            return failure(
                name, began, None, "previous probe still running", component_type="datastore"
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
                component_type="datastore",
            )
        remaining = deadline - (time.perf_counter() - began)
        if not task.done():
            await asyncio.wait({task}, timeout=max(0.0, remaining))
        if not task.done():
            self.abandoned += 1
            return failure(name, began, None, "deadline exceeded", component_type="datastore")
        error = task.exception()
        if error is not None:
            return failure(name, began, error, "probe failed", component_type="datastore")
        value, seconds = task.result()
        return value, seconds

    async def _probe(self, work: Work, checked_out: asyncio.Event) -> tuple[Any, float]:
        async with self.db.engine.connect() as conn:
            checked_out.set()
            # Marked as a health probe: telemetry neither traces nor measures it.
            await conn.execution_options(pa_db_health=True)
            await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}")
            began = time.perf_counter()
            value = await work(conn)
            return value, time.perf_counter() - began


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned probe's error is no "never retrieved" warning


async def _server_version(conn: AsyncConnection) -> str:
    result = await conn.exec_driver_sql("SELECT current_setting('server_version')")
    return str(result.scalar_one())


class DatabaseCheck:
    """``SELECT current_setting('server_version')`` round trip; observed value in ms."""

    component_type = "datastore"
    critical = True

    def __init__(
        self,
        db: Database,
        *,
        name: str = "database:responseTime",
        timeout: float | None = None,
        checkout_timeout: float | None = None,
    ) -> None:
        s = db.settings
        self.db = db
        self.name = name
        self.timeout = timeout if timeout is not None else s.health_timeout * 0.875
        self.checkout_timeout = (
            checkout_timeout if checkout_timeout is not None else s.health_checkout_timeout
        )
        if not 0 < self.checkout_timeout < self.timeout:
            raise ValueError(
                f"checkout_timeout must be > 0 and below timeout={self.timeout:g}s, "
                f"got {self.checkout_timeout!r}"
            )
        self.probe = GuardedProbe(db, statement_timeout=self.timeout)

    def __repr__(self) -> str:
        return f"<DatabaseCheck {self.name} timeout={self.timeout:g}s>"

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        outcome = await self.probe.run(
            self.name,
            _server_version,
            checkout_timeout=self.checkout_timeout,
            deadline=self.timeout,
        )
        if isinstance(outcome, CheckResult):
            return outcome
        version, seconds = outcome
        return CheckResult(
            name=self.name,
            status="pass",
            duration=time.perf_counter() - began,
            observed_value=round(seconds * 1000, 3),
            observed_unit="ms",
            component_type=self.component_type,
            details={"server_version": version},
        )


@dataclass
class PoolCheck:
    """Pool utilization: ``warn`` from ``warn_at``, ``fail`` when every slot is used."""

    db: Database
    name: str = "pool:utilization"
    timeout: float = 0.1
    critical: bool = True
    warn_at: float = 0.8

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        try:
            stats = self.db.pool_stats()
        except Exception as exc:
            return failure(self.name, began, exc, "database not started", component_type="system")
        u = stats.utilization
        status: Status = (
            "fail" if stats.used >= stats.capacity else "warn" if u >= self.warn_at else "pass"
        )
        return CheckResult(
            name=self.name,
            status=status,
            duration=time.perf_counter() - began,
            observed_value=round(u * 100, 1),
            observed_unit="percent",
            component_type="system",
            counts={
                "used": stats.used,
                "idle": stats.idle,
                "waiting": stats.waiting,
                "timeouts": stats.timeouts,
            },
            details=stats.as_dict(),
        )


class MigrationsCheck:
    """Migrations at head (``migrate.migration_status``); observed value: pending count."""

    component_type = "datastore"
    critical = True

    def __init__(
        self, db: Database, *, name: str = "database:pendingMigrations", ttl: float = 10.0
    ) -> None:
        self.db = db
        self.name = name
        self.timeout = db.settings.health_timeout * 0.875
        self.checkout_timeout = db.settings.health_checkout_timeout
        self.ttl = ttl  # migrations change rarely: the runner caches a pass this long
        self.probe = GuardedProbe(db, statement_timeout=self.timeout)

    async def run(self) -> CheckResult:
        from ..migrate import migration_status  # yoyo is imported only when asked for

        began = time.perf_counter()
        outcome = await self.probe.run(
            self.name,
            migration_status,
            checkout_timeout=self.checkout_timeout,
            deadline=self.timeout,
        )
        if isinstance(outcome, CheckResult):
            return outcome
        status, _ = outcome
        return CheckResult(
            name=self.name,
            status="pass" if status.at_head else "fail",
            duration=time.perf_counter() - began,
            observed_value=len(status.pending),
            observed_unit="migrations",
            component_type=self.component_type,
            details={"applied": len(status.applied), "pending": list(status.pending)},
        )
