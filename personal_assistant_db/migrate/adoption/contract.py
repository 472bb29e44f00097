"""Contract: the legacy columns go and the package's columns take their names and constraints.

Three phases, so that no lock is held for longer than a catalog change:

A. online (no blocking lock): every NOT NULL, CHECK and FOREIGN KEY of the package's schema is
   added to the shadow columns ``NOT VALID`` and then validated (``SHARE UPDATE EXCLUSIVE``);
   every index (unique ones too) is built ``CONCURRENTLY``. All data checks happen here: a row
   the package refuses fails this phase, and the phase's objects are dropped again.
B. one short transaction (``lock_timeout`` applies, retried): triggers and views off, legacy
   columns dropped, shadow columns renamed, ``SET NOT NULL`` (free after the validated check),
   constraints renamed or attached ``USING INDEX``, ids made identity columns continuing after the
   highest id, the package's triggers, the RBAC merge, and yoyo's history: the package migrations
   up to ``0009`` recorded as applied. The views in ``pa_adopt`` stay, as plain pass-through views,
   so the new app keeps running until it is deployed without ``?schema=pa_adopt``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
import psycopg.errors
from yoyo.migrations import get_migration_hash

from ..source import shipped
from .expand import VIEW_SCHEMA, current_schema, quoted, trigger_name
from .mapping import TABLES, TableMap, placeholders, shadow
from .rules import PACKAGE_PERMISSIONS
from .secrets import FUNCTION_NAMES
from .shape import covered_ids, head_snapshot, package_columns
from .steps import RunOptions

__all__ = ["apply_contract", "package_objects", "rollback_contract"]

_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _translate(text: str, tmap: TableMap) -> str:
    """Package column names -> shadow names, outside string literals."""
    names = {c.name for c in package_columns(tmap.name)}
    parts = text.split("'")
    for i in range(0, len(parts), 2):
        parts[i] = _NAME.sub(lambda m: shadow(m[0]) if m[0] in names else m[0], parts[i])
    return "'".join(parts)


def package_objects(kind: str, table: str) -> dict[str, str]:
    snap = head_snapshot()[kind]
    if kind == "indexes":
        return {k: v for k, v in snap.items() if f" ON {table} USING " in v}
    return {k.partition(".")[2]: v for k, v in snap.items() if k.partition(".")[0] == table}


def _exists(conn: psycopg.Connection[Any], query: str, *args: Any) -> bool:
    return conn.execute(query, args).fetchone() is not None


def _phase_a(conn: psycopg.Connection[Any], tmap: TableMap) -> None:
    t = tmap.name
    has_con = "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(%s) AND conname = %s"
    checks: list[tuple[str, str]] = []
    for col in package_columns(t):
        if col.not_null and not col.generated:
            checks.append((f"_pa_nn_{col.name}"[:63], f"CHECK ({shadow(col.name)} IS NOT NULL)"))
    for name, definition in package_objects("constraints", t).items():
        kind, _, body = definition.partition(" ")
        if kind == "c":
            checks.append((f"_pa_ck_{name}"[:63], _translate(body, tmap)))
        elif kind == "f":
            cols, _, rest = body.partition(" REFERENCES ")
            checks.append((f"_pa_ck_{name}"[:63], _translate(cols, tmap) + " REFERENCES " + rest))
    for name, definition in checks:
        if not _exists(conn, has_con, t, name):
            conn.execute(f"ALTER TABLE {t} ADD CONSTRAINT {name} {definition} NOT VALID".encode())
        conn.execute(f"ALTER TABLE {t} VALIDATE CONSTRAINT {name}".encode())
    for name, definition in package_objects("indexes", t).items():
        if name == f"{t}_pkey" and "id" not in tmap.dropped:
            continue  # the legacy primary key on id is the package's too
        temp = f"_pa_ix_{name}"[:63]
        row = conn.execute(
            "SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass(%s)", (temp,)
        ).fetchone()
        if row is not None and not row[0]:
            conn.execute(f"DROP INDEX CONCURRENTLY {temp}".encode())
            row = None
        if row is None:
            head, _, tail = definition.partition(" USING ")
            unique = "UNIQUE " if head.startswith("CREATE UNIQUE") else ""
            shape = _translate(tail, tmap)
            conn.execute(f"CREATE {unique}INDEX CONCURRENTLY {temp} ON {t} USING {shape}".encode())


def _undo_phase_a(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c"
        " WHERE c.connamespace = current_schema()::regnamespace"
        " AND (c.conname LIKE '\\_pa\\_nn\\_%%' OR c.conname LIKE '\\_pa\\_ck\\_%%')"
    ).fetchall()
    for table, name in rows:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}".encode())
    rows = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE '\\_pa\\_ix\\_%%'"
        " AND relnamespace = current_schema()::regnamespace"
    ).fetchall()
    for (name,) in rows:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}".encode())


def _phase_b(
    conn: psycopg.Connection[Any], tmap: TableMap, dropped: list[str], moved: list[str]
) -> None:
    t = tmap.name
    legacy = [*tmap.down, *tmap.dropped]
    conn.execute(f"DROP TRIGGER IF EXISTS {trigger_name(t)} ON {t}".encode())
    conn.execute(f"DROP FUNCTION IF EXISTS {trigger_name(t)}()".encode())
    conn.execute(f"ALTER TABLE {t} " + ", ".join(f"DROP COLUMN {c}" for c in legacy))
    for c in tmap.down:
        homes = ", ".join(f"{t}.{n}" for n in placeholders(tmap.down[c]))
        moved.append(f"{t}.{c} -> {homes}")
    dropped += [f"{t}.{c} (a surrogate key no foreign key references)" for c in tmap.dropped]
    for col in package_columns(t):
        conn.execute(f"ALTER TABLE {t} RENAME COLUMN {shadow(col.name)} TO {col.name}".encode())
    for col in package_columns(t):
        if col.not_null and not col.generated:
            conn.execute(f"ALTER TABLE {t} ALTER COLUMN {col.name} SET NOT NULL".encode())
            conn.execute(f"ALTER TABLE {t} DROP CONSTRAINT _pa_nn_{col.name}"[:200].encode())
    if "id" not in tmap.dropped:
        _identity(conn, t)
    indexes = package_objects("indexes", t)
    for name, definition in package_objects("constraints", t).items():
        kind = definition.partition(" ")[0]
        if kind in ("c", "f"):
            conn.execute(f"ALTER TABLE {t} RENAME CONSTRAINT _pa_ck_{name} TO {name}".encode())
        elif kind in ("p", "u") and not (name == f"{t}_pkey" and "id" not in tmap.dropped):
            what = "PRIMARY KEY" if kind == "p" else "UNIQUE"
            conn.execute(
                f"ALTER TABLE {t} ADD CONSTRAINT {name} {what} USING INDEX _pa_ix_{name}".encode()
            )
            indexes.pop(name, None)
    for name in indexes:
        if name != f"{t}_pkey":
            conn.execute(f"ALTER INDEX _pa_ix_{name} RENAME TO {name}".encode())


def _identity(conn: psycopg.Connection[Any], t: str) -> None:
    row = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (t,)).fetchone()
    conn.execute(f"ALTER TABLE {t} ALTER COLUMN id DROP DEFAULT".encode())
    if row and row[0]:
        conn.execute(f"DROP SEQUENCE {row[0]}".encode())
    top = conn.execute(f"SELECT max(id) FROM {t}".encode()).fetchone()
    start = int(top[0]) + 1 if top and top[0] is not None else 1
    identity = f"GENERATED ALWAYS AS IDENTITY (START WITH {start})"
    conn.execute(f"ALTER TABLE {t} ALTER COLUMN id ADD {identity}".encode())


def _package_objects(conn: psycopg.Connection[Any], schema: str) -> None:
    snap = head_snapshot()
    for definition in snap["functions"].values():
        conn.execute(definition.encode())
    for definition in snap["triggers"].values():
        conn.execute(definition.encode())
    conn.execute(f"DROP VIEW IF EXISTS {VIEW_SCHEMA}._yoyo_migration")
    for tmap in TABLES:
        cols = ([] if "id" in tmap.dropped else ["id"]) + [
            c.name for c in package_columns(tmap.name)
        ]
        conn.execute(
            f"CREATE VIEW {VIEW_SCHEMA}.{tmap.name} AS SELECT {', '.join(cols)}"
            f" FROM {quoted(schema)}.{tmap.name}".encode()
        )
    history = f"{quoted(schema)}._yoyo_migration"
    conn.execute(f"CREATE VIEW {VIEW_SCHEMA}._yoyo_migration AS SELECT * FROM {history}".encode())
    for name in FUNCTION_NAMES:
        conn.execute(f"DROP FUNCTION IF EXISTS {name}".encode())


def _merge_rbac(conn: psycopg.Connection[Any], grant: bool) -> list[str]:
    merged: list[str] = []
    for resource, action, description in PACKAGE_PERMISSIONS:
        row = conn.execute(
            "INSERT INTO permissions (resource, action, description) SELECT %s, %s, %s"
            " WHERE NOT EXISTS (SELECT 1 FROM permissions WHERE name = %s || ':' || %s)"
            " RETURNING name",
            (resource, action, description, resource, action),
        ).fetchone()
        if row:
            merged.append(f"permission {row[0]} added")
    if grant:
        rows = conn.execute(_GRANTS).fetchall()
        merged += [f"granted {p} to role {r}" for r, p in rows]
    return merged


_GRANTS = """
INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id FROM roles AS r JOIN permissions AS p ON
    (r.name IN ('user', 'premium', 'administrator')
        AND p.name IN ('profile:read', 'profile:update', 'tasks:read', 'tasks:write',
                       'notes:read', 'notes:write'))
    OR (r.name IN ('premium', 'administrator')
        AND p.name IN ('assistant:advanced', 'integrations:manage', 'export:create'))
    OR (r.name = 'administrator'
        AND p.name IN ('users:read', 'users:manage', 'roles:manage', 'audit:read'))
ON CONFLICT DO NOTHING
RETURNING (SELECT name FROM roles WHERE id = role_id),
          (SELECT name FROM permissions WHERE id = permission_id)
"""


def _record(conn: psycopg.Connection[Any]) -> None:
    digests = {m.id: m.sha256 for m in shipped()}
    for mid in covered_ids():
        conn.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
            " VALUES (%s, %s, now() AT TIME ZONE 'UTC') ON CONFLICT DO NOTHING",
            (get_migration_hash(mid), mid),
        )
        conn.execute(
            "INSERT INTO _pa_db_migration_hashes (migration_id, sha256) VALUES (%s, %s)"
            " ON CONFLICT (migration_id) DO UPDATE SET sha256 = EXCLUDED.sha256",
            (mid, digests[mid]),
        )


def apply_contract(conn: psycopg.Connection[Any], opts: RunOptions) -> None:
    conn.autocommit = True
    schema = current_schema(conn)
    try:
        for tmap in TABLES:
            _phase_a(conn, tmap)
    except BaseException:
        if not conn.closed:
            _undo_phase_a(conn)
        raise
    dropped: list[str] = []
    moved: list[str] = []
    for attempt in range(4):
        dropped.clear()
        moved.clear()
        try:
            swap_began = time.perf_counter()
            with conn.transaction():
                for tmap in TABLES:
                    conn.execute(f"DROP VIEW IF EXISTS {VIEW_SCHEMA}.{tmap.name}".encode())
                for tmap in TABLES:
                    _phase_b(conn, tmap, dropped, moved)
                _package_objects(conn, schema)
                merged = _merge_rbac(conn, opts.grant_package_permissions)
                _record(conn)
            opts.result["swap_s"] = round(time.perf_counter() - swap_began, 4)
            break
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            # the swap locks ten tables in one transaction: another session's lock (or a lock
            # cycle with it) cancels it whole; wait a little and take them again
            if attempt == 3:
                _undo_phase_a(conn)
                raise
            time.sleep(0.2 * 2**attempt)
        except BaseException:
            if not conn.closed:
                _undo_phase_a(conn)
            raise
    opts.result["dropped"] = dropped
    opts.result["moved"] = moved
    opts.result["merged"] = merged


def rollback_contract(conn: psycopg.Connection[Any]) -> None:
    from .uncontract import rollback_contract as lossy

    lossy(conn)
