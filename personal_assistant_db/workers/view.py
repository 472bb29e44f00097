"""What the pod view holds: one report per live worker, the merged latency, the server's limit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Metric

from ..telemetry.latency import OperationLatency

__all__ = ["PodView", "WorkerReport", "pod_metrics", "report"]


@dataclass(frozen=True)
class WorkerReport:
    """One worker as the pod view saw it. ``reported_at`` is Unix time."""

    pid: int
    reported_at: float
    leader: bool
    this: bool
    pool: dict[str, Any] | None

    @property
    def used(self) -> int:
        return int(self.pool["used"]) if self.pool else 0

    @property
    def capacity(self) -> int:
        if not self.pool:
            return 0
        return int(self.pool["size"]) + max(int(self.pool["max_overflow"]), 0)


@dataclass(frozen=True)
class PodView:
    workers: list[WorkerReport]
    latency: dict[str, OperationLatency]
    overall: OperationLatency | None
    max_connections: int | None
    leader_alerts: list[dict[str, Any]] | None


def report(pid: int, data: dict[str, Any], *, this: bool) -> WorkerReport:
    pool = data.get("pool")
    return WorkerReport(
        pid=pid,
        reported_at=float(data.get("at") or 0.0),
        leader=bool(data.get("leader")),
        this=this,
        pool=pool if isinstance(pool, dict) else None,
    )


def pod_metrics(reports: Sequence[WorkerReport]) -> list[Metric]:
    now = time.time()
    count = Metric("pa_db_workers", "Live worker processes merged into this exposition.", "gauge")
    count.add_sample("pa_db_workers", {}, float(len(reports)))
    age = Metric(
        "pa_db_worker_report_age_seconds", "Seconds since each worker last published.", "gauge"
    )
    util = Metric(
        "pa_db_worker_pool_utilization", "Connections in use / pool capacity, per worker.", "gauge"
    )
    for r in reports:
        labels = {"worker": str(r.pid)}
        age.add_sample(age.name, labels, 0.0 if r.this else max(0.0, now - r.reported_at))
        if r.capacity:
            util.add_sample(util.name, labels, r.used / r.capacity)
    return [m for m in (count, age, util) if m.samples]
