"""Helpers for tests/test_models.py and test_app_schema.py (no tests here): compare the shipped
models with a database, and round-trip a row of every table.

Two yardsticks, both on a reflected database migrated by the package's own migrate API:

- ``alembic_diffs``: ``alembic.autogenerate.compare_metadata`` with types and server defaults
  compared, the way an alembic user would check models against a database; plus what
  alembic's autogenerate leaves out (CHECK constraints, FK ``ON DELETE``, identity, generated
  columns, partial-index predicates), compared from SQLAlchemy's inspector;
- ``catalog_diffs``: ``metadata.create_all`` into an empty schema of the same database, then the
  catalog snapshots (migrate/snapshot.py: columns with position, type, NOT NULL, default,
  identity; every constraint's and index's definition as PostgreSQL prints it) of that schema
  and of the migrated one, compared line by line. PostgreSQL normalizes both sides, so the
  comparison is exact.

``round_trip_every_table(PATHS[name](db), tag)`` writes one row per table (every writable column
set) through the statement API, ``db.connect()`` or an ``AsyncSession`` and compares what comes
back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, and_, create_engine, inspect, select, text
from sqlalchemy import insert as insert_
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import async_sessionmaker

from personal_assistant_db import Database, models
from personal_assistant_db.migrate.snapshot import BOOKKEEPING_TABLES, diff, snapshot
from personal_assistant_db.migrate.target import target_of
from personal_assistant_db.models import metadata as shipped_metadata

# The parts of a snapshot that tables define (triggers and functions live in migrations only).
TABLE_PARTS = ("columns", "constraints", "indexes", "sequences")


def sync_engine(url: str) -> Engine:
    """A psycopg engine whose default schema is the URL's ``?schema=`` (as yoyo's is)."""
    target = target_of(url)
    bare = target.url.difference_update_query(["schema"])
    options = f"-c search_path={target.schema}" if target.schema else ""
    return create_engine(bare, connect_args={"options": options} if options else {})


def _include_name(name: str | None, type_: str, parent: Any) -> bool:
    if type_ == "table":
        return name not in BOOKKEEPING_TABLES and not (name or "").startswith("_yoyo")
    return True


def alembic_diffs(conn: Connection, metadata: MetaData = shipped_metadata) -> list[Any]:
    """What alembic's autogenerate would change, plus the inspector comparisons it skips."""
    context = MigrationContext.configure(
        conn,
        opts={"compare_type": True, "compare_server_default": True, "include_name": _include_name},
    )
    found: list[Any] = list(compare_metadata(context, metadata))
    found += _inspector_diffs(conn, metadata)
    return found


def _inspector_diffs(conn: Connection, metadata: MetaData) -> list[Any]:
    inspector = inspect(conn)
    found: list[Any] = []
    for table in metadata.sorted_tables:
        name = table.name
        if not inspector.has_table(name):
            continue  # alembic already reports it
        checks = {c["name"]: _squash(c["sqltext"]) for c in inspector.get_check_constraints(name)}
        want_checks = {
            str(c.name): _squash(str(getattr(c, "sqltext", "")))
            for c in table.constraints
            if type(c).__name__ == "CheckConstraint"
        }
        if checks != want_checks:
            found.append(("check constraints", name, want_checks, checks))
        fks = {
            fk["name"]: (fk["referred_table"], tuple(fk["constrained_columns"]),
                         (fk.get("options") or {}).get("ondelete"))
            for fk in inspector.get_foreign_keys(name)
        }  # fmt: skip
        want_fks = {
            str(fk.name): (
                fk.elements[0].column.table.name,
                tuple(c.name for c in fk.columns),
                fk.ondelete,
            )
            for fk in table.foreign_key_constraints
        }
        if fks != want_fks:
            found.append(("foreign keys", name, want_fks, fks))
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        for column in table.columns:
            live = columns.get(column.name)
            if live is None:
                continue
            identity = live.get("identity")
            want_identity = column.identity is not None and bool(column.identity.always)
            if bool(identity and identity.get("always")) != want_identity:
                found.append(("identity", name, column.name, want_identity, identity))
            computed = live.get("computed")
            if (computed is None) != (column.computed is None):
                found.append(("generated", name, column.name, column.computed, computed))
        wheres = {
            i["name"]: _squash(str((i.get("dialect_options") or {}).get("postgresql_where", "")))
            for i in inspector.get_indexes(name)
            if not i.get("duplicates_constraint")  # a UNIQUE constraint's own index
        }
        want_wheres = {
            str(i.name): _squash(_text(i.dialect_options["postgresql"]["where"])).replace(
                f"{name}.", ""
            )
            for i in table.indexes
        }
        if wheres != want_wheres:
            found.append(("index predicates", name, want_wheres, wheres))
    return found


def _text(clause: Any) -> str:
    return "" if clause is None else str(clause.compile(compile_kwargs={"literal_binds": True}))


def _squash(sql: str) -> str:
    return "".join(ch for ch in sql if ch not in "() ").replace("::text", "")


def catalog_diffs(
    conn: Connection, schema: str, metadata: MetaData = shipped_metadata
) -> list[str]:
    """Snapshot lines that differ between ``schema`` and the metadata created in a fresh schema
    (dropped again: the caller's transaction is rolled back)."""
    conn.execute(text("CREATE SCHEMA pa_db_models_copy"))
    copy = conn.execution_options(schema_translate_map={None: "pa_db_models_copy"})
    metadata.create_all(copy)
    raw = conn.connection.driver_connection
    assert raw is not None
    live = snapshot(raw, schema)
    made = snapshot(raw, "pa_db_models_copy")
    return diff({k: made[k] for k in TABLE_PARTS}, {k: live[k] for k in TABLE_PARTS})


# -- round trips -------------------------------------------------------------------------------
T0 = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)  # an hour before a DST change


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def sample_rows(tag: str) -> list[tuple[Table, Callable[[dict[str, Any]], dict[str, Any]]]]:
    """One row per table with every writable column set; ``ids`` holds the parents' keys."""
    m = models
    return [
        (m.users, lambda ids: {
            "email": f"Ada.{tag}@example.com", "display_name": f"Ada {tag} Łovelace",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "is_active": False, "is_verified": True, "failed_login_count": 3,
            "locked_until": _at(1), "last_login_at": _at(-1), "created_at": _at(-2),
            "updated_at": _at(-1.5), "phone_number": f"+1555-{tag}",
            "verification_token_hash": hashlib.sha256(b"v" + tag.encode()).hexdigest(),
            "password_reset_token_hash": hashlib.sha256(b"r" + tag.encode()).hexdigest(),
            "password_reset_expires_at": _at(2), "default_role_id": None,
            "role_assigned_at": _at(-1), "role_assigned_by": None,
        }),
        (m.user_sessions, lambda ids: {
            "session_id": f"sess-{tag}", "user_id": ids["users"],
            "device_info": {"os": "linux", "screens": [1, 2], "ok": True},
            "ip_address": ip_address("192.0.2.7"), "user_agent": "curl/8", "created_at": _at(0),
            "last_seen_at": _at(0.5), "expires_at": _at(24), "is_active": False,
        }),
        (m.auth_tokens, lambda ids: {
            "user_id": ids["users"], "session_id": ids["user_sessions"],
            "token_hash": hashlib.sha256(tag.encode()).hexdigest(), "issued_at": _at(0),
            "expires_at": _at(720), "revoked": True, "revoked_at": _at(1),
            "token_type": "reset", "last_used_at": _at(0.25),
        }),
        (m.mfa_configurations, lambda ids: {
            "user_id": ids["users"], "totp_secret": "JBSWY3DPEHPK3PXP", "totp_enabled": True,
            "sms_enabled": True, "phone_number": "+15550100", "backup_codes": ["1a2b", "3c4d"],
            "created_at": _at(0), "updated_at": _at(0),
            "trusted_devices": [{"device": "laptop", "until": "2026-04-01"}],
        }),
        (m.roles, lambda ids: {
            "name": f"editor_{tag}", "description": "Edits", "parent_role_id": None,
            "created_at": _at(0), "updated_at": _at(0),
        }),
        (m.permissions, lambda ids: {
            "resource": f"notes_{tag}", "action": "share", "description": "Share notes",
            "created_at": _at(0),
        }),
        (m.role_permissions, lambda ids: {
            "role_id": ids["roles"], "permission_id": ids["permissions"], "granted_at": _at(0),
        }),
        (m.user_roles, lambda ids: {
            "user_id": ids["users"], "role_id": ids["roles"], "is_primary": True,
            "granted_by": ids["users"], "granted_at": _at(0), "expires_at": _at(48),
        }),
        (m.security_events, lambda ids: {
            "user_id": ids["users"], "event_type": "login.failed", "severity": "high",
            "ip_address": ip_address("2001:db8::1"), "user_agent": "Mozilla/5.0",
            "details": {"attempt": 3, "why": "bad password"}, "occurred_at": _at(0),
        }),
        (m.access_audit_logs, lambda ids: {
            "user_id": ids["users"], "resource": "notes", "action": "read", "granted": False,
            "roles_checked": ["user", "premium"], "reason": "not owner",
            "ip_address": ip_address("198.51.100.1"), "occurred_at": _at(0),
            "resource_id": 42, "user_agent": "Mozilla/5.0",
        }),
    ]  # fmt: skip


Insert = Callable[[Table, dict[str, Any]], Awaitable[dict[str, Any]]]


async def round_trip_every_table(insert: Insert, tag: str) -> None:
    """Insert each table's sample row through ``insert`` (which returns the row read back by its
    primary key) and compare every column."""
    tag = re.sub(r"[^a-z0-9_]", "_", tag.lower())  # it goes into role and permission names
    ids: dict[str, Any] = {}
    for table, make in sample_rows(tag):
        values = make(ids)
        back = await insert(table, values)
        expected = dict(values)
        if "id" in table.c:
            assert isinstance(back["id"], int) and back["id"] > 0
            expected["id"] = ids[table.name] = back["id"]
        if table is models.permissions:  # GENERATED ALWAYS AS (resource || ':' || action)
            expected["name"] = f"{values['resource']}:{values['action']}"
        assert back == expected, table.name


def _where_pk(table: Table, row: Any) -> Any:
    return and_(*(c == row[c.name] for c in table.primary_key.columns))


def via_statement_api(db: Database) -> Insert:
    """Insert with ``db.fetch_one(insert().returning(pk))``, read back with ``db.fetch_one``."""

    async def insert(table: Table, values: dict[str, Any]) -> dict[str, Any]:
        key = await db.fetch_one(insert_(table).values(values).returning(*table.primary_key))
        assert key is not None
        row = await db.fetch_one(select(table).where(_where_pk(table, key._mapping)))
        assert row is not None
        return dict(row._mapping)

    return insert


def via_connect(db: Database) -> Insert:
    """Insert and commit on one ``db.connect()``, read back on another."""

    async def insert(table: Table, values: dict[str, Any]) -> dict[str, Any]:
        async with db.connect() as conn:
            result = await conn.execute(insert_(table).values(values).returning(*table.c))
            await conn.commit()
            written = result.one()._asdict()
        async with db.connect() as conn:
            read = await conn.execute(select(table).where(_where_pk(table, written)))
            back = read.one()._asdict()
        assert back == written
        return back

    return insert


ORM_CLASS = {str(m.persist_selectable.description): m.class_ for m in models.Base.registry.mappers}


def via_session(db: Database) -> Insert:
    """``session.add(Model(**values))`` + commit in one AsyncSession, ``session.get`` in another."""
    sessions = async_sessionmaker(db.engine, expire_on_commit=False)

    async def insert(table: Table, values: dict[str, Any]) -> dict[str, Any]:
        cls = ORM_CLASS[table.name]
        async with sessions() as session:
            obj = cls(**values)
            session.add(obj)
            await session.commit()
            key = tuple(getattr(obj, c.name) for c in table.primary_key.columns)
        async with sessions() as session:
            found = await session.get(cls, key if len(key) > 1 else key[0])
            assert found is not None
            return {c.name: getattr(found, c.name) for c in table.columns}

    return insert


PATHS: dict[str, Callable[[Database], Insert]] = {
    "statement API": via_statement_api,
    "db.connect()": via_connect,
    "AsyncSession": via_session,
}
