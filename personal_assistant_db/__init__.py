"""personal_assistant_db: a production-grade PostgreSQL layer for ASGI apps.

Nothing happens at import time: no engine, no connection, no logging configuration.
"""

from .database import STATE_KEY, Database
from .doctor.analysis import analyze
from .doctor.findings import Finding, Report, Severity
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
    PoolerMismatch,
    PrimaryUnavailable,
    SettingProblem,
    UnknownMigration,
    WrongEventLoop,
)
from .fastpath import Row, Transaction
from .health import Check, CheckResult, health_app
from .health.alerts import AlertEvent, AlertManager, AlertRule, default_rules
from .health.webhook import WebhookSink
from .lifespan import combine_lifespans
from .logs import redact_secrets
from .pool import PoolStats
from .replicas import ReadYourWritesMiddleware
from .sessions import DatabaseSession
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
    "DatabaseSession",
    "Finding",
    "MigrationDrift",
    "MigrationError",
    "MigrationLockHeld",
    "OperationLatency",
    "PaDbError",
    "PoolStats",
    "PoolerMismatch",
    "PrimaryUnavailable",
    "ReadYourWritesMiddleware",
    "Report",
    "Row",
    "SettingProblem",
    "Settings",
    "Severity",
    "Telemetry",
    "Transaction",
    "UnknownMigration",
    "WebhookSink",
    "WrongEventLoop",
    "add_trace_context",
    "analyze",
    "combine_lifespans",
    "default_rules",
    "health_app",
    "redact_secrets",
]

__version__ = "0.1.0"
