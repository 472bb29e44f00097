"""A synthetic 15-minute history for the dashboard's pure tests: a load spike with alerts."""

from __future__ import annotations

import math

from personal_assistant_db.health.alerts import AlertEvent
from personal_assistant_db.health.history import History
from personal_assistant_db.health.result import CheckResult, Status
from personal_assistant_db.pool import PoolStats
from personal_assistant_db.telemetry import OperationLatency

NOW = 1_800_000_000.0
OPERATIONS = [f"SELECT table_{k:02d}" for k in range(16)]
CHECKS = [
    "process:eventLoopLag",
    "database:responseTime",
    "pool:utilization",
    "database:pendingMigrations",
    "database:queryP95",
    "cache:ping",
]


def pool(used: int, waiting: int) -> PoolStats:
    return PoolStats(
        size=10, max_overflow=10, used=used, idle=max(0, 12 - used), overflow_in_use=0,
        waiting=waiting, checkouts=1000, reused_checkouts=990, timeouts=waiting // 5,
        wait_p50=0.001, wait_p95=0.004 * waiting, wait_max=0.1, created=20, closed=0,
        invalidated=0,
    )  # fmt: skip


def spike(i: int, at: int = 120, width: float = 12.0) -> float:
    return math.exp(-(((i - at) / width) ** 2))


def history(n: int = 180, interval: float = 5.0, window: float = 900.0) -> History:
    """``n`` snapshots ending at ``NOW``: 16 operations, 6 checks, a pool spike, 3 alerts."""
    h = History(interval=interval, window=window)
    for i in range(n):
        s = spike(i)
        latency = {
            op: OperationLatency(
                1000 + i * (20 - k),
                0.002,
                (0.01 + 0.003 * k) * (1 + 4 * s),
                (0.03 + k / 200) * (1 + 4 * s),
            )
            for k, op in enumerate(OPERATIONS)
        }
        used = min(20, round(8 + 12 * spike(i, width=15)))
        status: Status = "fail" if used >= 20 else "warn" if used >= 16 else "pass"
        results = [
            CheckResult(name, status if name == "pool:utilization" else "pass", 0.001,
                        reason=None if status == "pass" else f"{used} of 20 connections in use")
            for name in CHECKS
        ]  # fmt: skip
        if i == n - 68:
            h.note([AlertEvent("pool_saturated", "firing", "warning", 0.9, 0.8, "pool")])
        if i == n - 60:
            h.note([AlertEvent("query_p95_over_budget", "firing", "warning", 130.0, 100.0, "p95")])
        if i == n - 45:
            h.note([AlertEvent("pool_saturated", "resolved", "warning", 0.5, 0.7, "pool")])
        h.record(
            results=results,
            pool=pool(used, round(20 * spike(i, width=8))),
            latency=latency,
            at=NOW - (n - 1 - i) * interval,
        )
    return h
