"""personal_assistant_db: a production-grade PostgreSQL layer for ASGI apps.

Nothing happens at import time: no engine, no connection, no logging configuration.
"""

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
from .lifespan import combine_lifespans
from .logging import redact_secrets
from .pool import PoolStats
from .settings import Settings
from .telemetry import OperationLatency, Telemetry, add_trace_context

__all__ = [
    "STATE_KEY",
    "AnalysisError",
    "ConfigurationError",
    "ConnectError",
    "ConnectFatal",
    "ConnectTimeout",
    "Database",
    "DatabaseNotStarted",
    "MigrationDrift",
    "MigrationError",
    "MigrationLockHeld",
    "OperationLatency",
    "PaDbError",
    "PoolStats",
    "SettingProblem",
    "Settings",
    "Telemetry",
    "UnknownMigration",
    "add_trace_context",
    "combine_lifespans",
    "redact_secrets",
]

__version__ = "0.1.0"
