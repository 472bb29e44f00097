"""One engine builder: every role gets the same listeners and connect settings, under every pooler.

The real part starts a Database with a replica URL (the same server: the builder does not care
what is behind a URL) under each ``DB_POOLER`` mode, with telemetry attached, and compares the
primary's engine with the replica's: the listeners on the engine and its pool, the dialect
methods the timeout guards and telemetry wrap, and what the server reports inside a
transaction. Before the builder, a replica engine under ``pgbouncer-session`` had 3 connect
listeners to the primary's 4 and ran without ``statement_timeout``. The modes work against
PostgreSQL itself (only slower), so no PgBouncer is needed to see what each engine sends.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant_db import Database, Settings, Telemetry
from personal_assistant_db.engines import ROLES, connect_args

MODES = ("none", "pgbouncer-session", "pgbouncer-transaction")
URL = "postgresql://app:secret@db:5432/app"
_ENGINE_EVENTS = ("engine_connect", "before_cursor_execute", "commit", "begin")
_POOL_EVENTS = ("connect", "first_connect", "checkout", "checkin", "close", "close_detached")
_POOL_EVENTS += ("invalidate", "soft_invalidate", "reset")
_DIALECT = ("do_ping", "do_execute", "do_execute_no_params", "do_executemany")
#: Read-your-writes tracks commits on the primary only (replicas/replica_set.py): the one
#: listener difference that is not the builder's.
PRIMARY_ONLY = {"commit": ["flag_commit"], "pool.checkin": ["record_pending"]}


def _name(listener: Any) -> str:
    return str(getattr(listener, "__qualname__", type(listener).__qualname__))


def listeners(engine: AsyncEngine) -> dict[str, list[str]]:
    """Event -> the listeners on ``engine`` and its pool, and the dialect methods replaced."""
    sync = engine.sync_engine
    found = {e: sorted(map(_name, getattr(sync.dispatch, e))) for e in _ENGINE_EVENTS}
    found["handle_error"] = sorted(map(_name, sync.dialect.dispatch.handle_error))
    found |= {f"pool.{e}": sorted(map(_name, getattr(sync.pool.dispatch, e))) for e in _POOL_EVENTS}
    found["dialect"] = sorted(m for m in _DIALECT if m in vars(sync.dialect))
    return found


async def _server_view(engine: AsyncEngine) -> dict[str, str]:
    async with engine.begin() as conn:
        return {
            name: str((await conn.exec_driver_sql(f"SHOW {name}")).scalar())
            for name in ("statement_timeout", "default_transaction_read_only", "application_name")
        }


@pytest.mark.parametrize("mode", MODES)
async def test_every_role_gets_the_same_listeners_and_settings(
    database_url: str, mode: str
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_REPLICA_URLS": database_url,
        "DB_ENV": "test",
        "DB_POOLER": mode,
        "DB_STATEMENT_TIMEOUT_MS": "7000",
        "DB_APPLICATION_NAME": "engines-test",
    }
    db = Database.from_env(env)
    telemetry = Telemetry(db, tracer_provider=TracerProvider())
    await db.start()
    try:
        [replica] = db.replicas.nodes
        primary_engine, replica_engine = db.engine, replica.started_engine()
        on_primary, on_replica = listeners(primary_engine), listeners(replica_engine)
        primary_view = await _server_view(primary_engine)
        replica_view = await _server_view(replica_engine)
    finally:
        await db.stop()
        telemetry.close()
    for event, names in PRIMARY_ONLY.items():
        for name in names:
            on_primary[event].remove(name)
    assert on_primary == on_replica
    session_set = "attach.<locals>.on_connect" in on_primary["pool.connect"]
    assert session_set == (mode == "pgbouncer-session")
    mismatch_watch = "attach.<locals>.on_error" in on_primary["handle_error"]
    assert mismatch_watch == (mode == "none")
    assert on_primary["dialect"] == sorted(_DIALECT)  # timeout guards + telemetry, on both
    assert primary_view == {
        "statement_timeout": "7s",
        "default_transaction_read_only": "off",
        "application_name": "engines-test",
    }
    assert replica_view == {**primary_view, "default_transaction_read_only": "on"}


@given(
    mode=st.sampled_from(MODES),
    statement_ms=st.integers(0, 10**7),
    command=st.sampled_from(["0", "2.5", "31"]),
)
def test_roles_differ_only_where_roles_says(mode: str, statement_ms: int, command: str) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": URL,
            "DB_POOLER": mode,
            "DB_STATEMENT_TIMEOUT_MS": str(statement_ms),
            "DB_COMMAND_TIMEOUT": command,
        }
    )
    primary, replica = connect_args(settings, "primary"), connect_args(settings, "replica")
    assert ROLES["replica"].read_only and not ROLES["primary"].read_only
    assert replica.pop("server_settings").pop("default_transaction_read_only") == "on"
    assert "default_transaction_read_only" not in primary.pop("server_settings")
    assert primary == replica
    assert primary.get("command_timeout", 0.0) == float(command)


def test_connect_args_carry_timeouts_and_application_name() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": URL,
            "DB_APPLICATION_NAME": "svc-a",
            "DB_STATEMENT_TIMEOUT_MS": "1500",
            "DB_COMMAND_TIMEOUT": "9",
        }
    )
    assert connect_args(settings) == {
        "timeout": 10.0,
        "command_timeout": 9.0,
        "server_settings": {"application_name": "svc-a", "statement_timeout": "1500"},
    }
