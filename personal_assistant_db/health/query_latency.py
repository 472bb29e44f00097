"""Query P95 from telemetry as a check: ``warn`` above ``DB_QUERY_P95_BUDGET_MS``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .checks import CheckResult

if TYPE_CHECKING:
    from .monitor import TelemetrySource

__all__ = ["QueryLatencyCheck"]


@dataclass
class QueryLatencyCheck:
    """Observed value: the overall query P95 in ms over telemetry's window (no DB access)."""

    telemetry: TelemetrySource
    budget_ms: float
    name: str = "database:queryP95"
    timeout: float = 0.1
    critical: bool = False

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        p95 = self.telemetry.overall_p95()
        snapshot = self.telemetry.latency_snapshot()
        over = p95 is not None and p95 * 1000 > self.budget_ms
        return CheckResult(
            name=self.name,
            status="warn" if over else "pass",
            duration=time.perf_counter() - began,
            observed_value=None if p95 is None else round(p95 * 1000, 3),
            observed_unit="ms",
            component_type="datastore",
            counts={"queries": sum(v.count for v in snapshot.values())},
            details={
                "budget_ms": self.budget_ms,
                "operations": {k: v.as_dict() for k, v in snapshot.items()},
            },
            reason=(
                f"query P95 {p95 * 1000:.1f} ms is above DB_QUERY_P95_BUDGET_MS={self.budget_ms:g}"
                if over and p95 is not None
                else None
            ),
        )
