"""Helpers for tests/test_models.py (no tests here): compare the shipped models with a database.

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
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, create_engine, inspect, text
from sqlalchemy.engine import Engine

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
