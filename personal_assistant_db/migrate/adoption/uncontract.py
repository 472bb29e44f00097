"""Rolling back contract (lossy, behind ``--allow-lossy``): back to the expanded shape.

The package's columns go back to their shadow names, the legacy columns are added again and
computed from them (the trigger's ``down`` direction, in batches), the legacy constraints come
back (validated online), and the package migrations contract recorded are unrecorded. What the
package never kept cannot come back (``steps.CONTRACT_LOSSES``): a raw token is replaced by
``sha256:<hash>``, which the old app never matches, so its users sign in again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .backfill import backfill
from .contract import package_objects
from .expand import VIEW_SCHEMA, current_schema, table_sql, view_sql
from .mapping import TABLES, TableMap, shadow
from .secrets import FUNCTIONS
from .shape import columns_of, head_snapshot, legacy_snapshot, package_columns
from .steps import covered_ids

__all__ = ["rollback_contract"]


def _unshape(conn: psycopg.Connection[Any], tmap: TableMap) -> None:
    t = tmap.name
    keeps_id = "id" not in tmap.dropped
    for name in package_objects("constraints", t):
        if not (keeps_id and name == f"{t}_pkey"):
            conn.execute(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {name}".encode())
    for name in package_objects("indexes", t):
        if not (keeps_id and name == f"{t}_pkey"):
            conn.execute(f"DROP INDEX IF EXISTS {name}".encode())
    for col in package_columns(t):
        if col.not_null and not col.generated:
            conn.execute(f"ALTER TABLE {t} ALTER COLUMN {col.name} DROP NOT NULL".encode())
        conn.execute(f"ALTER TABLE {t} RENAME COLUMN {col.name} TO {shadow(col.name)}".encode())
    if keeps_id:
        conn.execute(f"ALTER TABLE {t} ALTER COLUMN id DROP IDENTITY IF EXISTS".encode())
        conn.execute(f"CREATE SEQUENCE {t}_id_seq AS integer OWNED BY {t}.id".encode())
        conn.execute(
            f"ALTER TABLE {t} ALTER COLUMN id SET DEFAULT nextval('{t}_id_seq'::regclass)".encode()
        )
        top = "COALESCE(max(id), 1), max(id) IS NOT NULL"
        conn.execute(f"SELECT setval('{t}_id_seq', {top}) FROM {t}".encode())
    adds = []
    for col in columns_of(legacy_snapshot(), t):
        if col.name == "id" and keeps_id:
            continue
        kind = "serial" if col.name == "id" else col.type
        adds.append(f"ADD COLUMN {col.name} {kind}")
    conn.execute(f"ALTER TABLE {t} {', '.join(adds)}".encode())


def _legacy_constraints(conn: psycopg.Connection[Any], tmap: TableMap) -> None:
    t = tmap.name
    for col in columns_of(legacy_snapshot(), t):
        if col.not_null and col.name != "id":
            conn.execute(f"ALTER TABLE {t} ALTER COLUMN {col.name} SET NOT NULL".encode())
    for key, definition in legacy_snapshot()["constraints"].items():
        table, _, name = key.partition(".")
        if table != t or (name == f"{t}_pkey" and "id" not in tmap.dropped):
            continue
        kind, _, body = definition.partition(" ")
        suffix = " NOT VALID" if kind in ("f", "c") else ""
        conn.execute(f"ALTER TABLE {t} ADD CONSTRAINT {name} {body}{suffix}".encode())
        if suffix:
            conn.execute(f"ALTER TABLE {t} VALIDATE CONSTRAINT {name}".encode())


def rollback_contract(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    schema = current_schema(conn)
    snap = head_snapshot()
    statements = [f"DROP VIEW IF EXISTS {VIEW_SCHEMA}.{t.name}" for t in TABLES]
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.encode())
        for key in snap["triggers"]:
            table, _, name = key.partition(".")
            conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}".encode())
        for tmap in TABLES:
            _unshape(conn, tmap)
        for statement in FUNCTIONS:
            conn.execute(statement.encode())
        for tmap in TABLES:
            for statement in table_sql(tmap):
                conn.execute(statement.encode())
            conn.execute(view_sql(tmap, schema).encode())
        conn.execute(
            "DELETE FROM _yoyo_migration WHERE migration_id = ANY(%s)", (list(covered_ids()),)
        )
        conn.execute(
            "DELETE FROM _pa_db_migration_hashes WHERE migration_id = ANY(%s)",
            (list(covered_ids()),),
        )
    for tmap in TABLES:
        backfill(conn, tmap.name, batch_size=5_000, direction="down")
    for tmap in TABLES:
        with conn.transaction():
            _legacy_constraints(conn, tmap)
