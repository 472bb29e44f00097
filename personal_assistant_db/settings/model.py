"""The Settings dataclass: read once from ``DATABASE_URL`` and ``DB_*``, validated up front.

``Settings.from_env()`` collects *every* bad variable into one ConfigurationError. A profile
(``DB_ENV`` = development | test | production) supplies defaults; an explicit variable always wins.
Nothing else in the package reads ``os.environ`` (OpenTelemetry's own ``OTEL_*`` aside).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sqlalchemy.engine import URL

from ..errors import ConfigurationError, SettingProblem
from ..pooler import transaction_pooling_args
from ..urls import looks_secret, render_url, to_sync
from .parsers import (
    EXAMPLE_URL,
    URL_EXPECTED,
    ReadYourWrites,
    app_name,
    choice,
    closest,
    database_url,
    decimal,
    parse_bool,
    read_your_writes,
    replica_urls,
    scrub,
    secret,
    warn_unknown,
    whole,
)
from .profiles import PROFILES, derived_defaults

__all__ = ["MAX_HISTORY_SNAPSHOTS", "Settings", "closest_variable", "known_variables"]

#: The history ring's hard cap (health/history.py states the memory this bounds).
MAX_HISTORY_SNAPSHOTS = 2880

Profile = Literal["development", "test", "production"]
Pooler = Literal["none", "pgbouncer-session", "pgbouncer-transaction"]
StartupMode = Literal["fail_fast", "degraded"]
QueryText = Literal["redact", "omit"]
_URL_VARIABLES = ("DATABASE_URL", "DATABASE_MIGRATE_URL", "DATABASE_REPLICA_URLS")
_LSN = ReadYourWrites("lsn")


def _var(env: str, parse: Callable[[str], Any], expected: str, **kw: Any) -> Any:
    return field(metadata={"env": env, "parse": parse, "expected": expected}, **kw)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated database settings. ``repr()`` hides the password and the health token."""

    url: URL = field(repr=False)
    replica_urls: tuple[URL, ...] = field(default=(), repr=False)
    #: DATABASE_MIGRATE_URL: a direct URL for ``pa-db migrate`` when DATABASE_URL is a pooler's.
    migrate_url: URL | None = field(default=None, repr=False)
    env: Profile = "production"
    pooler: Pooler = _var(
        "DB_POOLER",
        choice("none", "pgbouncer-session", "pgbouncer-transaction"),
        "none, pgbouncer-session or pgbouncer-transaction",
        default="none",
    )
    pool_size: int = _var("DB_POOL_SIZE", whole(1), "a whole number >= 1, e.g. 10", default=10)
    max_overflow: int = _var("DB_MAX_OVERFLOW", whole(0), "a whole number >= 0", default=10)
    pool_timeout: float = _var(
        "DB_POOL_TIMEOUT", decimal(0, strict=True), "seconds > 0, e.g. 30", default=30.0
    )
    pool_recycle: int = _var(
        "DB_POOL_RECYCLE", whole(-1), "whole seconds (-1 disables), e.g. 3600", default=3600
    )
    pool_pre_ping: bool = _var("DB_POOL_PRE_PING", parse_bool, "true or false", default=True)
    pool_use_lifo: bool = _var("DB_POOL_USE_LIFO", parse_bool, "true or false", default=False)
    pool_ping_bypass_ms: int = _var(
        "DB_POOL_PING_BYPASS_MS",
        whole(0),
        "milliseconds (0 = ping on every checkout), e.g. 500",
        default=500,
    )
    read_retry_budget_ms: int = _var(
        "DB_READ_RETRY_BUDGET_MS", whole(0), "milliseconds (0 = no retry), e.g. 2000", default=2000
    )
    connect_timeout: float = _var(
        "DB_CONNECT_TIMEOUT", decimal(0, strict=True), "seconds > 0, e.g. 10", default=10.0
    )
    command_timeout: float = _var(
        "DB_COMMAND_TIMEOUT",
        decimal(0),
        "seconds (0 = none), e.g. 31 (default: DB_STATEMENT_TIMEOUT_MS + 1 s)",
        default=0.0,
    )
    ping_timeout: float = _var(
        "DB_PING_TIMEOUT", decimal(0, strict=True), "seconds > 0", default=1.0
    )
    retry_after: int = _var("DB_RETRY_AFTER", whole(0), "whole seconds >= 0, e.g. 1", default=1)
    error_log_interval: float = _var(
        "DB_ERROR_LOG_INTERVAL", decimal(0), "seconds >= 0, e.g. 5", default=5.0
    )
    statement_timeout_ms: int = _var(
        "DB_STATEMENT_TIMEOUT_MS", whole(0), "milliseconds (0 = none), e.g. 30000", default=30_000
    )
    application_name: str = _var(
        "DB_APPLICATION_NAME",
        app_name,
        "printable text of at most 63 bytes",
        default="personal-assistant-db",
    )
    startup_mode: StartupMode = _var(
        "DB_STARTUP_MODE",
        choice("fail_fast", "degraded"),
        "fail_fast or degraded",
        default="fail_fast",
    )
    connect_retry_deadline: float = _var(
        "DB_CONNECT_RETRY_DEADLINE", decimal(0), "seconds >= 0, e.g. 30", default=30.0
    )
    connect_retry_initial: float = _var(
        "DB_CONNECT_RETRY_INITIAL", decimal(0, strict=True), "seconds > 0, e.g. 0.1", default=0.1
    )
    connect_retry_max: float = _var(
        "DB_CONNECT_RETRY_MAX", decimal(0, strict=True), "seconds > 0, e.g. 5", default=5.0
    )
    degraded_start_wait: float = _var(
        "DB_DEGRADED_START_WAIT", decimal(0), "seconds >= 0, e.g. 0.5", default=0.5
    )
    warmup_connections: int = _var(
        "DB_WARMUP_CONNECTIONS", whole(0), "a whole number >= 0, at most DB_POOL_SIZE", default=2
    )
    health_token: str | None = _var(
        "DB_HEALTH_TOKEN", secret, "a random string of 16+ characters", default=None, repr=False
    )
    health_timeout: float = _var(
        "DB_HEALTH_TIMEOUT",
        decimal(0, strict=True),
        "seconds > 0, below your probe timeout (Kubernetes default: 1), e.g. 0.8",
        default=0.8,
    )
    health_checkout_timeout: float = _var(
        "DB_HEALTH_CHECKOUT_TIMEOUT", decimal(0, strict=True), "seconds > 0, e.g. 0.2", default=0.2
    )
    health_pool_window: float = _var(
        "DB_HEALTH_POOL_WINDOW", decimal(0, strict=True), "seconds > 0, e.g. 10", default=10.0
    )
    health_ttl: float = _var("DB_HEALTH_TTL", decimal(0), "seconds >= 0, e.g. 1", default=1.0)
    health_fail_ttl: float = _var(
        "DB_HEALTH_FAIL_TTL", decimal(0), "seconds >= 0, e.g. 0.5", default=0.5
    )
    metrics_require_token: bool = _var(
        "DB_METRICS_REQUIRE_TOKEN", parse_bool, "true or false", default=False
    )
    tracing: bool = _var("DB_TRACING", parse_bool, "true or false", default=True)
    trace_connect: bool = _var("DB_TRACE_CONNECT", parse_bool, "true or false", default=False)
    trace_query_text: QueryText = _var(
        "DB_TRACE_QUERY_TEXT", choice("redact", "omit"), "redact or omit", default="redact"
    )
    latency_window: float = _var(
        "DB_LATENCY_WINDOW", decimal(0, strict=True), "seconds > 0, e.g. 300", default=300.0
    )
    health_history_interval: float = _var(
        "DB_HEALTH_HISTORY_INTERVAL",
        decimal(1),
        "seconds >= 1 between dashboard history snapshots, e.g. 5",
        default=5.0,
    )
    health_history_window: float = _var(
        "DB_HEALTH_HISTORY_WINDOW",
        decimal(0, strict=True),
        "seconds of dashboard history to keep, e.g. 900",
        default=900.0,
    )
    query_p95_budget_ms: float = _var(
        "DB_QUERY_P95_BUDGET_MS",
        decimal(0, strict=True),
        "milliseconds > 0, e.g. 100",
        default=100.0,
    )
    slow_query_ms: float = _var(
        "DB_SLOW_QUERY_MS", decimal(0), "milliseconds (0 = off), e.g. 500", default=500.0
    )
    replica_max_lag_ms: int = _var(
        "DB_REPLICA_MAX_LAG_MS", whole(1), "milliseconds >= 1, e.g. 1000", default=1000
    )
    replica_check_interval: float = _var(
        "DB_REPLICA_CHECK_INTERVAL", decimal(0, strict=True), "seconds > 0, e.g. 1", default=1.0
    )
    read_your_writes: ReadYourWrites = _var(
        "DB_READ_YOUR_WRITES", read_your_writes, "lsn, off or window:<seconds>", default=_LSN
    )
    migrate_lock_timeout_ms: int = _var(
        "DB_MIGRATE_LOCK_TIMEOUT_MS", whole(0), "milliseconds (0 = none), e.g. 5000", default=5_000
    )
    migrate_statement_timeout_ms: int = _var(
        "DB_MIGRATE_STATEMENT_TIMEOUT_MS",
        whole(0),
        "milliseconds (0 = none), e.g. 60000",
        default=60_000,
    )

    def __post_init__(self) -> None:
        problems = _cross_checks(self)
        if problems:
            raise ConfigurationError(problems)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        problems: list[SettingProblem] = []
        values: dict[str, Any] = {}

        raw_profile = env.get("DB_ENV", "production").strip().lower() or "production"
        if raw_profile not in PROFILES:
            problems.append(
                SettingProblem(
                    "DB_ENV",
                    f"unknown profile {raw_profile[:40]!r}",
                    "development, test or production",
                )
            )
            raw_profile = "production"
        values["env"] = raw_profile
        values.update(PROFILES[raw_profile])

        raw_url = env.get("DATABASE_URL", "").strip()
        values["url"] = database_url(env, "DATABASE_URL", URL_EXPECTED, problems, required=True)
        raw_migrate = env.get("DATABASE_MIGRATE_URL", "").strip()
        values["migrate_url"] = database_url(
            env, "DATABASE_MIGRATE_URL", "a direct (not pooled) URL, e.g. " + EXAMPLE_URL, problems
        )
        raw_replicas = env.get("DATABASE_REPLICA_URLS", "")
        if raw_replicas.strip():
            values["replica_urls"], replica_problems = replica_urls(raw_replicas)
            problems += replica_problems

        for f in fields(cls):
            name = f.metadata.get("env")
            if name is None or name not in env:
                continue
            try:
                values[f.name] = f.metadata["parse"](env[name])
            except ValueError:
                shown = "(hidden)" if looks_secret(name) else repr(env[name][:40])
                problems.append(
                    SettingProblem(name, f"invalid value {shown}", f.metadata["expected"])
                )
        values.update(overrides)
        values.update(derived_defaults(values))
        warn_unknown(env, known_variables())
        if problems:
            raw = (raw_url, raw_migrate, *raw_replicas.split(","))
            raise ConfigurationError(scrub(problems, *raw))
        return cls(**values)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.repr and f.name != "url"
        )
        migrate = ""
        if self.migrate_url is not None:
            migrate = f"migrate_url={render_url(self.migrate_url)!r}, "
        return f"Settings(url={self.safe_url!r}, {migrate}{shown})"

    @property
    def safe_replica_urls(self) -> list[str]:
        """The replica URLs, secrets as ``***``."""
        return [render_url(u) for u in self.replica_urls]

    @property
    def async_url(self) -> URL:
        """The asyncpg URL the engine uses."""
        return self.url

    @property
    def sync_url(self) -> URL:
        """The psycopg 3 URL for yoyo and other synchronous tools."""
        return to_sync(self.url)

    @property
    def migrate_sync_url(self) -> URL:
        """The psycopg 3 URL migrations use: DATABASE_MIGRATE_URL if set, else DATABASE_URL."""
        return to_sync(self.migrate_url if self.migrate_url is not None else self.url)

    @property
    def safe_url(self) -> str:
        """The URL with the password and secret query values as ``***``: for logs and errors."""
        return render_url(self.url)

    def asyncpg_connect_args(self) -> dict[str, Any]:
        """``connect_args`` for create_async_engine: timeouts, server settings and, behind
        PgBouncer, what ``DB_POOLER`` changes (pooler.py says what and why)."""
        server_settings = {"application_name": self.application_name}
        if self.statement_timeout_ms and self.pooler == "none":
            server_settings["statement_timeout"] = str(self.statement_timeout_ms)
        args: dict[str, Any] = {"timeout": self.connect_timeout, "server_settings": server_settings}
        if self.command_timeout:
            args["command_timeout"] = self.command_timeout
        if self.pooler == "pgbouncer-transaction":
            args.update(transaction_pooling_args(self.statement_timeout_ms))
        return args


def known_variables() -> list[str]:
    """Every environment variable Settings reads."""
    names = (f.metadata["env"] for f in fields(Settings) if f.metadata)
    return [*_URL_VARIABLES, "DB_ENV", *names]


def closest_variable(name: str) -> str | None:
    """The known variable ``name`` was most likely meant to be (difflib), or None."""
    return closest(name, known_variables())


def _cross_checks(s: Settings) -> list[SettingProblem]:
    problems = []
    if s.warmup_connections > s.pool_size:
        problems.append(
            SettingProblem(
                "DB_WARMUP_CONNECTIONS",
                f"{s.warmup_connections} is more than DB_POOL_SIZE={s.pool_size}",
                "a number <= DB_POOL_SIZE",
            )
        )
    if s.connect_retry_initial > s.connect_retry_max:
        problems.append(
            SettingProblem(
                "DB_CONNECT_RETRY_INITIAL", "is larger than DB_CONNECT_RETRY_MAX", "initial <= max"
            )
        )
    if s.health_checkout_timeout >= s.health_timeout:
        problems.append(
            SettingProblem(
                "DB_HEALTH_CHECKOUT_TIMEOUT",
                "is not below DB_HEALTH_TIMEOUT",
                "a checkout wait shorter than the whole check deadline",
            )
        )
    snapshots = s.health_history_window / s.health_history_interval
    if not 1 <= snapshots <= MAX_HISTORY_SNAPSHOTS:
        problems.append(
            SettingProblem(
                "DB_HEALTH_HISTORY_WINDOW",
                f"keeps {snapshots:g} snapshots at DB_HEALTH_HISTORY_INTERVAL="
                f"{s.health_history_interval:g}",
                f"a window of 1 to {MAX_HISTORY_SNAPSHOTS} intervals, e.g. 900 at an interval of 5",
            )
        )
    return problems
