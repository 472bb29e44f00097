"""The built-in checks: liveness, database round trip, pool utilization, migrations at head.

Checks are data: a small object with ``async run()`` returning a ``CheckResult`` (result.py).
Nothing here renders or caches (runner.py and render.py do). A check never raises: a failure is
a ``fail`` result whose public part carries no server text; the real cause is logged under a
correlation id (``error_id``) that the public output shows too. The database checks go through
``GuardedProbe`` (probe.py): no wait on the pool's own timeout, no cancelled connections.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..migrate.history import MigrationStatus, migration_status
from .probe import GuardedProbe, reserved_server_version, server_version
from .replica_lag import component_id
from .result import Check, CheckResult, Status, failure, worst

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..database import Database
    from ..replicas.node import Node

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
        reserved_before = self.probe.reserved.opened
        outcome = await self.probe.run(
            self.name,
            server_version,
            checkout_timeout=self.checkout_timeout,
            deadline=self.timeout,
            reserved=reserved_server_version,
        )
        if isinstance(outcome, CheckResult):
            return outcome
        version, seconds = outcome
        on_reserved = self.probe.reserved.is_open or self.probe.reserved.opened > reserved_before
        return CheckResult(
            name=self.name,
            status="pass",
            duration=time.perf_counter() - began,
            observed_value=round(seconds * 1000, 3),
            observed_unit="ms",
            component_type=self.component_type,
            # pooler: the path to the server, "none" (direct) or the PgBouncer mode (DB_POOLER);
            # path: the pool, or the reserved connection while the pool is saturated.
            details={
                "server_version": version,
                "pooler": self.db.settings.pooler,
                "path": "reserved" if on_reserved else "pool",
            },
        )


@dataclass
class PoolCheck:
    """Pool health: ``fail`` only when checkouts actually time out, ``warn`` when busy.

    - ``fail``: at least one checkout timed out (``DB_POOL_TIMEOUT``) in the last ``window``
      seconds (``DB_HEALTH_POOL_WINDOW``): requests are being turned away.
    - ``warn``: every slot in use, or utilization from ``warn_at``. A saturated pool that still
      serves everyone is load, not failure: failing readiness would move this pod's load onto
      the others and saturate them in turn (a cascade). The ``reason`` says which.

    ``node``: one database node's pool (a replica's is not critical: a full replica pool sends
    reads elsewhere). With replicas configured every pool result carries ``componentId``
    (primary, replica-N) and its server address, port and role in ``details``.
    """

    db: Database
    name: str = "pool:utilization"
    timeout: float = 0.1
    critical: bool = True
    warn_at: float = 0.8
    window: float | None = None  # default: the settings' health_pool_window
    node: Node | None = None

    def __post_init__(self) -> None:
        if self.node is not None and self.node.role == "replica":
            self.critical = False

    @property
    def component_id(self) -> str | None:
        return component_id(self.db.nodes, self.node) if self.node is not None else None

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        node = self.node
        try:
            stats = node.pool_stats() if node is not None else self.db.pool_stats()
        except Exception as exc:
            return failure(self.name, began, exc, "database not started", component_type="system")
        window = self.window if self.window is not None else self.db.settings.health_pool_window
        recent = (node.meter if node is not None else self.db.meter).timeouts_within(window)
        u = stats.utilization
        status: Status = "pass"
        reason: str | None = None
        if recent:
            status = "fail"
            reason = f"{recent} pool checkout timeout(s) in the last {window:g}s"
        elif stats.used >= stats.capacity:
            status = "warn"
            reason = (
                f"pool saturated: all {stats.capacity} connections in use, {stats.waiting} "
                f"waiting, wait p95 {stats.wait_p95 * 1000:.0f} ms, no timeouts"
            )
        elif u >= self.warn_at:
            status = "warn"
            reason = f"pool busy: {u:.0%} of {stats.capacity} connections in use"
        details: dict[str, Any] = {**stats.as_dict(), "reason": reason}
        if status == "fail":
            details["error_class"] = "PoolTimeout"
        if node is not None:
            details.update(
                {"role": node.role, "server.address": node.address, "server.port": node.port}
            )
        return CheckResult(
            name=self.name,
            status=status,
            duration=time.perf_counter() - began,
            observed_value=round(u * 100, 1),
            observed_unit="percent",
            component_type="system",
            # Numbers only (public): the snapshot the /pool route promises, without the token.
            counts={
                "used": stats.used,
                "idle": stats.idle,
                "overflow": stats.overflow_in_use,
                "waiting": stats.waiting,
                "capacity": stats.capacity,
                "waitP95Ms": round(stats.wait_p95 * 1000, 3),
                "timeouts": stats.timeouts,
                "recentTimeouts": recent,
                "efficiency": round(stats.efficiency, 4),
            },
            reason=reason,
            details=details,
            component_id=self.component_id,
        )


class MigrationsCheck:
    """Migrations at head (``migrate.migration_status``); observed value: pending count.

    With ``?schema=`` in DATABASE_URL it reads that schema's yoyo history, named explicitly (the
    ``search_path`` may not reach the server, as behind PgBouncer in transaction mode, and
    ``public`` may hold the host app's own yoyo history)."""

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

    async def _status(self, conn: AsyncConnection) -> MigrationStatus:
        return await migration_status(conn, schema=self.db.settings.schema)

    async def run(self) -> CheckResult:

        began = time.perf_counter()
        outcome = await self.probe.run(
            self.name,
            self._status,
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
