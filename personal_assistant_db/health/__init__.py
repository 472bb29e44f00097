"""The ``/health`` mount: checks as data, a single-flight runner, health+json rendering."""

from __future__ import annotations

from .app import health_app
from .checks import (
    Check,
    CheckResult,
    DatabaseCheck,
    LivenessCheck,
    MigrationsCheck,
    PoolCheck,
    Status,
)
from .monitor import HealthMonitor, TelemetrySource
from .query_latency import QueryLatencyCheck
from .runner import HealthReport, HealthRunner

__all__ = [
    "Check",
    "CheckResult",
    "DatabaseCheck",
    "HealthMonitor",
    "HealthReport",
    "HealthRunner",
    "LivenessCheck",
    "MigrationsCheck",
    "PoolCheck",
    "QueryLatencyCheck",
    "Status",
    "TelemetrySource",
    "health_app",
]
