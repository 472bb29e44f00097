"""The background loop that feeds alerts and history: runs the checks through the runner,
evaluates rules, and every history interval records a snapshot (history.py) from memory.

It starts lazily (the first probe, or the Database's start hook) and stops through
``Database.add_hooks(on_stop=...)``, because ``Mount`` never runs a sub-app's lifespan. It goes
through the same runner as requests, so it adds no database queries beyond one per TTL; the
history snapshot reads only what is already in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..logs import get_logger
from .alerts import AlertEvent, AlertManager, Observation
from .checks import Check
from .history import History
from .probe import GuardedProbe
from .runner import HealthRunner

if TYPE_CHECKING:
    from ..database import Database
    from ..pool import PoolStats
    from ..telemetry.latency import OperationLatency

__all__ = ["AlertGate", "HealthMonitor", "TelemetrySource"]

log = get_logger()


class TelemetrySource(Protocol):
    """What health needs from telemetry (``personal_assistant_db.Telemetry`` fits)."""

    def latency_snapshot(self) -> dict[str, OperationLatency]: ...

    def overall_p95(self) -> float | None: ...

    def prometheus_exposition(self, accept_header: str | None = None) -> tuple[bytes, str]: ...


class AlertGate(Protocol):
    """Alerts once per pod (``workers.Pod`` fits): only the lease holder evaluates and fires."""

    def leads(self, manager: AlertManager) -> bool: ...

    def evaluated(self, manager: AlertManager) -> None: ...

    def pool(self, own: PoolStats | None) -> PoolStats | None: ...

    def recorded(self, history: History) -> None: ...


class HealthMonitor:
    """Every ``interval`` seconds: run ``checks``, evaluate ``manager``'s rules, dispatch events."""

    def __init__(
        self,
        db: Database,
        runner: HealthRunner,
        checks: Sequence[Check],
        manager: AlertManager,
        *,
        telemetry: TelemetrySource | None,
        interval: float,
        history: History | None = None,
        gate: AlertGate | None = None,
    ) -> None:
        self.db = db
        self.runner = runner
        self.checks = list(checks)
        self.manager = manager
        self.telemetry = telemetry
        self.interval = max(interval, 0.05)
        self.history = history
        self.gate = gate
        self._last_timeouts: int | None = None
        self._task: asyncio.Task[None] | None = None
        db.add_hooks(on_start=self._on_start, on_stop=self.stop)

    def __repr__(self) -> str:
        running = self._task is not None and not self._task.done()
        return f"<HealthMonitor every {self.interval:g}s running={running}>"

    async def tick(self) -> list[AlertEvent]:
        """One evaluation: fresh-or-cached results, rules, sinks. Returns the events."""
        if self.gate is not None and not self.gate.leads(self.manager):
            return []  # another worker of the pod evaluates, records history and fires
        report = await self.runner.run(self.checks)
        pool = self.db.pool_stats() if self.db.started else None
        if self.gate is not None:
            pool = self.gate.pool(pool)
        new = 0
        if pool is not None:
            new = 0 if self._last_timeouts is None else max(0, pool.timeouts - self._last_timeouts)
            self._last_timeouts = pool.timeouts
        obs = Observation(
            # By name, the first entry wins: the primary's, where a check has one per node.
            results={r.name: r for r in reversed(report.results)},
            pool=pool,
            query_p95=self.telemetry.overall_p95() if self.telemetry is not None else None,
            new_timeouts=new,
        )
        events = self.manager.evaluate(obs)
        if self.gate is not None:
            self.gate.evaluated(self.manager)
        if self.history is not None:
            self.history.note(events)
            if self.history.due():
                latency = self.telemetry.latency_snapshot() if self.telemetry else None
                self.history.record(results=report.results, pool=pool, latency=latency)
                if self.gate is not None:
                    self.gate.recorded(self.history)
        await self.manager.dispatch(events)
        return events

    def ensure_started(self) -> None:
        """Start the loop unless it runs, or the Database is stopped (its start hook restarts it:
        a probe on a stopped Database must not leave a loop behind that nothing would stop)."""
        if (self._task is None or self._task.done()) and self.db.started:
            self._task = asyncio.create_task(self._loop(), name="pa-db-health-monitor")

    def _on_start(self, db: Database) -> None:
        self.ensure_started()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the loop must outlive one bad evaluation
                log.error("health.monitor.failed", error_class=type(exc).__name__)
            await asyncio.sleep(self.interval)

    async def stop(self, db: Database | None = None, *, drain: float = 2.0) -> None:
        """Stop the loop, let in-flight probes return their connections (up to ``drain`` s, no
        cancels: they end on their statement/driver timeouts), close the sinks."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        deadline = time.monotonic() + drain
        settled = await self.runner.drain(drain)
        for check in self.checks:
            probe = getattr(check, "probe", None)
            if isinstance(probe, GuardedProbe):
                left = max(0.0, deadline - time.monotonic())
                settled = await probe.wait(left) and settled
        if not settled:
            log.warning("health.monitor.stop_undrained", drain_s=drain)
        await self.manager.close()
