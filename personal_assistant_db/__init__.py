"""personal_assistant_db: a production-grade PostgreSQL layer for ASGI apps.

Nothing happens at import time: no engine, no connection, no logging configuration.
"""

from .alerts import AlertEvent, AlertManager, AlertRule, WebhookSink, default_rules
from .database import STATE_KEY, Database
from .errors import (
    AnalysisError,
    ConfigurationError,
    ConnectError,
    ConnectFatal,
    ConnectTimeout,
    DatabaseNotStarted,
    MigrationDrift,
    MigrationError,
    MigrationLockHeld,
    PaDbError,
    SettingProblem,
    UnknownMigration,
)
from .fastpath import Row, Transaction
from .health import Check, CheckResult, health_app
from .lifespan import combine_lifespans
from .logging import redact_secrets
from .optimize import analyze
from .optimize_findings import Finding, Report, Severity
from .pool import PoolStats
from .settings import Settings
from .telemetry import OperationLatency, Telemetry, add_trace_context

__all__ = [
    "STATE_KEY",
    "AlertEvent",
    "AlertManager",
    "AlertRule",
    "AnalysisError",
    "Check",
    "CheckResult",
    "ConfigurationError",
    "ConnectError",
    "ConnectFatal",
    "ConnectTimeout",
    "Database",
    "DatabaseNotStarted",
    "Finding",
    "MigrationDrift",
    "MigrationError",
    "MigrationLockHeld",
    "OperationLatency",
    "PaDbError",
    "PoolStats",
    "Report",
    "Row",
    "SettingProblem",
    "Settings",
    "Severity",
    "Telemetry",
    "Transaction",
    "UnknownMigration",
    "WebhookSink",
    "add_trace_context",
    "analyze",
    "combine_lifespans",
    "default_rules",
    "health_app",
    "redact_secrets",
]

__version__ = "0.1.0"
