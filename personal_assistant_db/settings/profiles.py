"""The profiles (``DB_ENV``): the defaults each one supplies; an explicit variable always wins."""

from __future__ import annotations

from typing import Any

from .parsers import ReadYourWrites

__all__ = ["COMMAND_TIMEOUT_MARGIN", "PROFILES", "derived_defaults"]

#: DB_COMMAND_TIMEOUT, unless set, is DB_STATEMENT_TIMEOUT_MS plus this margin (seconds): the
#: server's statement_timeout fires first on a live server (a clean error, the connection stays
#: usable); the driver's bound fires only when the server cannot answer at all (a frozen backend).
COMMAND_TIMEOUT_MARGIN = 1.0

# Defaults per profile. Sizing: HikariCP's formula, connections = cores * 2 + spindles, gives
# about 10 for a 4-core database server; production allows 10 more as overflow for bursts.
PROFILES: dict[str, dict[str, Any]] = {
    "production": {
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 30.0,
        "pool_pre_ping": True,
        "startup_mode": "fail_fast",
        "connect_retry_deadline": 30.0,
        "statement_timeout_ms": 30_000,
        "warmup_connections": 2,
        "replica_max_lag_ms": 1000,
        "replica_check_interval": 1.0,
        "read_your_writes": ReadYourWrites("lsn"),
    },
    "development": {
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 10.0,
        "pool_pre_ping": True,
        "startup_mode": "degraded",
        "connect_retry_deadline": 10.0,
        "statement_timeout_ms": 30_000,
        "warmup_connections": 1,
        "replica_max_lag_ms": 1000,
        "replica_check_interval": 1.0,
        "read_your_writes": ReadYourWrites("lsn"),
    },
    "test": {
        "pool_size": 5,
        "max_overflow": 0,
        "pool_timeout": 5.0,
        "pool_pre_ping": False,
        "startup_mode": "fail_fast",
        "connect_retry_deadline": 5.0,
        "statement_timeout_ms": 10_000,
        "warmup_connections": 0,
        "connect_timeout": 5.0,
        "replica_max_lag_ms": 1000,
        "replica_check_interval": 0.25,
        "read_your_writes": ReadYourWrites("lsn"),
    },
}


def derived_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults computed from other settings, for the ones not set explicitly (``values`` holds
    the profile's defaults, the environment's values and the overrides)."""
    derived: dict[str, Any] = {}
    if "command_timeout" not in values:
        statement_ms = values.get("statement_timeout_ms", 0)
        derived["command_timeout"] = (
            statement_ms / 1000 + COMMAND_TIMEOUT_MARGIN if statement_ms else 0.0
        )
    return derived
