"""The pod: what this worker publishes, and the view merged from every live worker.

``Pod`` is a ``TelemetrySource`` (health/monitor.py): hand it to the health app in place of the
``Telemetry`` and ``/metrics``, the query P95 check, the dashboard's percentiles and the alert
rules see the whole pod. Each worker publishes every ``DB_WORKERS_INTERVAL`` seconds (and right
before it answers a scrape) from its own task: its exposition's families, its latency sketches,
its pool figures. Nothing on the query path changes: publication reads what the telemetry
already aggregates in memory.

Why a scrape publishes first: answering with this worker's live counters but a peer's older
file could show a smaller sum than the previous scrape answered by that peer. When every worker
answers from published figures only, and publishes before it answers, consecutive scrapes never
go down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import choose_encoder
from sqlalchemy import text

from ..logs import get_logger
from ..telemetry import HEALTH_OPTION
from ..telemetry.latency import OperationLatency
from ..telemetry.prometheus import wants_openmetrics
from . import families, shared, sketches
from .exchange import Exchange, Published
from .identity import current
from .lease import Lease
from .view import PodView, WorkerReport, pod_metrics, report

if TYPE_CHECKING:
    from ..database import Database
    from ..health.alerts import AlertManager
    from ..health.history import History, Snapshot
    from ..pool import PoolStats
    from ..telemetry import Telemetry

__all__ = ["Pod", "PodView", "WorkerReport"]

log = get_logger()
_OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class Pod:
    """Publishes this worker's figures and merges the pod's (see the module docstring)."""

    def __init__(self, db: Database, telemetry: Telemetry, exchange: Exchange, interval: float):
        self.db = db
        self.telemetry = telemetry
        self.exchange = exchange
        self.interval = interval
        self.lease = Lease(exchange.folder / "leader.lock")
        self.started_at = time.time()
        self.max_connections: int | None = None
        self.publications = 0
        self._task: asyncio.Task[None] | None = None
        self._leader_alerts: list[dict[str, Any]] = []
        self._view: tuple[float, PodView] | None = None
        #: The health app's history ring: recorded by the lease holder, shared through a file.
        self.history: History | None = None
        db.add_hooks(on_start=self.start, on_stop=self.stop)

    def __repr__(self) -> str:
        return f"<Pod {self.exchange.folder} every {self.interval:g}s leader={self.lease.held}>"

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, db: Database | None = None) -> None:
        self.exchange.me = current()  # built before a fork (gunicorn --preload): who runs now
        self.exchange.open()  # ConfigurationError naming DB_WORKERS_DIR when unusable
        self.publish()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="pa-db-workers-publish")

    async def stop(self, db: Database | None = None) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            data = self.publication()
            self.exchange.publish(data)
            mine = Published(self.exchange.me, data, live=True)
            self.exchange.compact(families.fold, extra=[mine], wait=True)
        except OSError as exc:
            log.warning("workers.stop_publish_failed", error_class=type(exc).__name__)
        self.lease.release()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self.max_connections is None and self.db.ready:
                    self.max_connections = await self._max_connections()
                self.publish()
                self.exchange.compact(families.fold)
            except Exception as exc:  # the loop must outlive one bad round
                log.error("workers.publish_failed", error_class=type(exc).__name__)

    async def _max_connections(self) -> int:
        """The server's max_connections, once per worker (tagged as a health query: it is not
        the host's, so it stays out of the query metrics)."""
        async with self.db.connect() as conn:
            await conn.execution_options(**{HEALTH_OPTION: True})
            return int((await conn.execute(text("SHOW max_connections"))).scalar_one())

    # -- publishing ------------------------------------------------------------------------
    def publication(self) -> dict[str, Any]:
        t = self.telemetry
        pool = asdict(self.db.pool_stats()) if self.db.started else None
        return {
            "at": time.time(),
            "since": self.started_at,
            "metrics": families.dump(t.exposition.registry),
            "latency": {op: sketches.dump(s) for op, s in t.latency.sketches().items()},
            "pool": pool,
            "max_connections": self.max_connections,
            "leader": self.lease.held,
            "alerts": self._leader_alerts if self.lease.held else None,
        }

    def publish(self) -> dict[str, Any]:
        data = self.publication()
        self.exchange.publish(data)
        self.publications += 1
        return data

    # -- the pod view ----------------------------------------------------------------------
    def _gather(self, *, fresh: bool) -> tuple[dict[str, Any], list[Published], Any]:
        own = self.publish() if fresh else self.publication()
        peers, archive = self.exchange.collect()
        return own, peers, archive

    def view(self, max_age: float = 0.2) -> PodView:
        """The merged view; one request reads it several times, so it is kept ``max_age`` s."""
        now = time.monotonic()
        if self._view is not None and now - self._view[0] < max_age:
            return self._view[1]
        view = self._merge_view()
        self._view = (now, view)
        return view

    def _merge_view(self) -> PodView:
        own, peers, _ = self._gather(fresh=False)
        live = [p for p in peers if p.live]
        reports = [report(os.getpid(), own, this=True)]
        reports += [report(p.worker.pid, p.data, this=False) for p in live]
        parts = [{op: sketches.load(d) for op, d in own["latency"].items()}]
        for p in live:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                parts.append({op: sketches.load(d) for op, d in p.data["latency"].items()})
        per_op, overall = sketches.merged_latency(parts)
        maxc = next(
            (
                d["max_connections"]
                for d in [own, *(p.data for p in live)]
                if d.get("max_connections")
            ),
            None,
        )
        alerts = next((p.data.get("alerts") for p in live if p.data.get("leader")), None)
        return PodView(sorted(reports, key=lambda r: r.pid), per_op, overall, maxc, alerts)

    def summary(self, *, detailed: bool) -> dict[str, Any]:
        """The ``workers`` key of the ``/health`` overview: the count in public; with the token,
        each worker's pool and report time, and the pod's total against max_connections."""
        view = self.view()
        out: dict[str, Any] = {"merged": len(view.workers)}
        if detailed:
            out["connections"] = {
                "used": sum(w.used for w in view.workers),
                "capacity": sum(w.capacity for w in view.workers),
                "maxConnections": view.max_connections,
            }
            out["perWorker"] = [
                {
                    "pid": w.pid,
                    "reportedAt": round(w.reported_at, 3),
                    "alertLease": w.leader,
                    "used": w.used,
                    "capacity": w.capacity,
                }
                for w in view.workers
            ]
        return out

    # TelemetrySource: the health app reads the pod through these three.
    def latency_snapshot(self) -> dict[str, OperationLatency]:
        return self.view().latency

    def overall_p95(self) -> float | None:
        overall = self.view().overall
        return None if overall is None else overall.p95

    def prometheus_exposition(self, accept_header: str | None = None) -> tuple[bytes, str]:
        own, peers, archive = self._gather(fresh=True)
        live = [(str(p.worker.pid), p.data.get("metrics", [])) for p in peers if p.live]
        dead = [p.data.get("metrics", []) for p in peers if not p.live]
        if archive is not None:
            dead.append(archive.get("metrics", []))
        merged = list(families.merge(own["metrics"], live, dead, str(os.getpid())))
        reports = [report(os.getpid(), own, this=True)]
        reports += [report(p.worker.pid, p.data, this=False) for p in peers if p.live]
        merged += pod_metrics(reports)
        encoder, content_type = choose_encoder(
            _OPENMETRICS if wants_openmetrics(accept_header) else ""
        )
        return encoder(families.registry_of(merged)), content_type

    # -- alerts once per pod ---------------------------------------------------------------
    def leads(self, manager: AlertManager) -> bool:
        """Take the lease if free; on taking it, adopt the pod's alert state (no re-fire)."""
        was = self.lease.held
        if not self.lease.acquire():
            return False
        if not was:
            state = self.exchange.read("alerts.json") or {}
            firing = state.get("firing") or {}
            for rule in manager.rules:
                if rule.name in firing:
                    rule.firing, rule.since = True, str(firing[rule.name])
            if self.history is not None:
                saved = self.exchange.read("history.json") or {}
                self.history.replace(shared.load_history(saved.get("snapshots") or []))
            log.info("workers.alert_lease_taken", firing=sorted(firing))
        return True

    def pool(self, own: PoolStats | None) -> PoolStats | None:
        """The pod's pool for alert rules and history: every live worker's, summed."""
        view = self.view()
        pools = [w.pool for w in view.workers if w.pool and not w.this]
        if own is not None:
            pools.append(asdict(own))
        return shared.pod_pool(pools)

    def recorded(self, history: History) -> None:
        try:
            self.exchange.write(
                "history.json", {"snapshots": shared.dump_history(history.snapshots())}
            )
        except ValueError as exc:  # over MAX_FILE_BYTES: the other workers keep the last one
            log.warning("workers.history_not_shared", reason=str(exc))

    def history_snapshots(self, history: History) -> list[Snapshot]:
        """The pod's history: ours when we hold the lease, else the holder's last file."""
        if self.lease.held:
            return history.snapshots()
        saved = self.exchange.read("history.json") or {}
        return shared.load_history(saved.get("snapshots") or [])

    def evaluated(self, manager: AlertManager) -> None:
        """Save the state before the sinks run: a leader that dies next never re-fires."""
        self._leader_alerts = manager.active()
        firing = {r.name: r.since for r in manager.rules if r.firing}
        self.exchange.write("alerts.json", {"firing": firing, "at": time.time()})

    def active_alerts(self, manager: AlertManager) -> list[dict[str, Any]]:
        if self.lease.held:
            return manager.active()
        return list(self.view().leader_alerts or [])
