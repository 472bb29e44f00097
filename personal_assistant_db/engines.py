"""The one engine builder: every AsyncEngine the package makes comes from ``build_engine``.

Each engine, whatever its role, gets the same steps in the same order:

1. the measured pool (pool.py), sized and timed by the settings, counting into the node's meter;
2. connect settings (``connect_args``): the connect timeout, asyncpg's command timeout,
   ``application_name``, and ``statement_timeout`` as ``DB_POOLER`` allows: a startup
   parameter on a direct server, ``SET`` on each new connection behind PgBouncer in session
   mode, ``SET LOCAL`` on each ``BEGIN`` in transaction mode (pooler.py says why);
3. listeners: the pool meter's counters, the timeout guards (timeout_guards.py) and what
   ``DB_POOLER`` needs (``pooler.attach``);
4. telemetry: ``Telemetry`` hooks each engine the same way when the Database starts (one
   ``QueryObserver`` per engine, telemetry/instrumentation.py); it never builds one.

Role differences, all of them, are in ``ROLES``: a replica's sessions start with
``default_transaction_read_only=on`` (a replica URL that turns out to reach a primary still
refuses writes). The migrate URL (``DATABASE_MIGRATE_URL``) gets no engine: ``pa-db migrate``
runs yoyo over psycopg, a synchronous driver, with its own timeouts (migrate/target.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .app_schema import search_path, translate_map, without_schema
from .pool import PoolMeter, bind_pool_class
from .pooler import attach, transaction_pooling_args
from .timeout_guards import install_bounds

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["ROLES", "Role", "RoleRules", "build_engine", "connect_args"]

Role = Literal["primary", "replica"]


@dataclass(frozen=True)
class RoleRules:
    """What differs between engines of different roles (nothing else does)."""

    #: Every session starts with ``default_transaction_read_only=on``.
    read_only: bool


ROLES: Mapping[Role, RoleRules] = {
    "primary": RoleRules(read_only=False),
    "replica": RoleRules(read_only=True),
}


def connect_args(settings: Settings, role: Role = "primary") -> dict[str, Any]:
    """asyncpg's ``connect_args`` for an engine of ``role``: timeouts, server settings and,
    behind PgBouncer, what ``DB_POOLER`` changes."""
    s = settings
    server_settings = {"application_name": s.application_name}
    if s.statement_timeout_ms and s.pooler == "none":
        server_settings["statement_timeout"] = str(s.statement_timeout_ms)
    if s.schema and s.pooler == "none":  # PgBouncer refuses it at startup (app_schema.py)
        server_settings["search_path"] = search_path(s.schema)
    if ROLES[role].read_only:
        server_settings["default_transaction_read_only"] = "on"
    args: dict[str, Any] = {"timeout": s.connect_timeout, "server_settings": server_settings}
    if s.command_timeout:
        args["command_timeout"] = s.command_timeout
    if s.pooler == "pgbouncer-transaction":
        path = search_path(s.schema) if s.schema else None
        args.update(transaction_pooling_args(s.statement_timeout_ms, path))
    return args


def build_engine(settings: Settings, role: Role, url: URL, meter: PoolMeter) -> AsyncEngine:
    """An AsyncEngine of ``role`` on ``url`` whose pool counts into ``meter`` (see above)."""
    s = settings
    engine = create_async_engine(
        without_schema(url),  # ?schema= reaches the engine as options, never the driver
        poolclass=bind_pool_class(meter),
        pool_size=s.pool_size,
        max_overflow=s.max_overflow,
        pool_timeout=s.pool_timeout,
        pool_recycle=s.pool_recycle,
        pool_pre_ping=s.pool_pre_ping,
        pool_use_lifo=s.pool_use_lifo,
        connect_args=connect_args(s, role),
        execution_options=translate_map(s.schema),
    )
    sync = engine.sync_engine
    meter.attach(sync)
    install_bounds(sync, ping_timeout=s.ping_timeout)
    attach(sync, s.pooler, s.statement_timeout_ms, search_path(s.schema) if s.schema else None)
    return engine
