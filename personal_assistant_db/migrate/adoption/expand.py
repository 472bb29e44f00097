"""Expand: the package's columns beside the legacy ones, kept in sync both ways, then backfilled.

For each legacy table:

1. every column of the package's schema (but ``id``, which both share) is added as a shadow
   column ``_pa_<name>``, nullable, with the package's default (metadata only: no rewrite);
2. a ``BEFORE INSERT OR UPDATE`` trigger keeps both sides equal. An INSERT by the old app (the
   sentinel column is NULL) fills the package's columns from the legacy ones (``up``); an INSERT
   by the new app fills the legacy columns (``down``). An UPDATE recomputes only the other side of
   the columns it changed;
3. a view ``pa_adopt.<table>`` shows the package's names over the shadow columns; the new app runs
   with ``?schema=pa_adopt``. The views are simple, so INSERT/UPDATE/DELETE/RETURNING go through;
4. the backfill runs ``UPDATE ... SET id = id`` in batches of ids, each its own short transaction,
   with ``pa_adopt.backfill`` set so the trigger computes every shadow column.

Every statement is idempotent (``IF NOT EXISTS``, ``OR REPLACE``), so a run killed at any point is
finished by running it again. The legacy columns are never written by expand itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql

from .backfill import BACKFILL_GUC, backfill
from .mapping import TABLES, TableMap, placeholders, render, shadow
from .secrets import FUNCTION_NAMES, FUNCTIONS
from .shape import Column, columns_of, legacy_snapshot, package_columns

__all__ = [
    "VIEW_SCHEMA",
    "apply_expand",
    "current_schema",
    "quoted",
    "rollback_expand",
    "run_in_transaction",
    "table_sql",
    "trigger_name",
    "view_sql",
]

VIEW_SCHEMA = "pa_adopt"


def trigger_name(table: str) -> str:
    return f"_pa_adopt_sync_{table}"


def _up(tmap: TableMap, column: str) -> str:
    return render(tmap.up[column], {n: f"NEW.{n}" for n in placeholders(tmap.up[column])})


def _down(tmap: TableMap, column: str) -> str:
    text = tmap.down[column].replace(
        "OLD_backup_codes", "(CASE WHEN TG_OP = 'UPDATE' THEN OLD.backup_codes END)"
    )
    return render(text, {n: f"NEW.{shadow(n)}" for n in placeholders(text)})


def _shadow_expression(expression: str, columns: list[Column]) -> str:
    """A generated column's expression with the package's names replaced by shadow names."""
    out = expression
    for col in sorted(columns, key=lambda c: -len(c.name)):
        out = out.replace(col.name, shadow(col.name))
    return out.replace(shadow(shadow("")), shadow(""))


def table_sql(tmap: TableMap) -> list[str]:
    """The DDL of one table's expand, in order (one transaction)."""
    cols = package_columns(tmap.name)
    out: list[str] = []
    adds = []
    for col in cols:
        if col.generated:
            expr = _shadow_expression(col.generated, cols)
            adds.append(
                f"ADD COLUMN IF NOT EXISTS {shadow(col.name)} {col.type}"
                f" GENERATED ALWAYS AS {expr} STORED"
            )
        else:
            adds.append(f"ADD COLUMN IF NOT EXISTS {shadow(col.name)} {col.type}")
    out.append(f"ALTER TABLE {tmap.name} " + ", ".join(adds))
    defaults = [f"ALTER COLUMN {shadow(c.name)} SET DEFAULT {c.default}" for c in cols if c.default]
    if defaults:
        out.append(f"ALTER TABLE {tmap.name} " + ", ".join(defaults))
    out.append(_function_sql(tmap, cols))
    out.append(
        f"CREATE OR REPLACE TRIGGER {trigger_name(tmap.name)} BEFORE INSERT OR UPDATE"
        f" ON {tmap.name} FOR EACH ROW EXECUTE FUNCTION {trigger_name(tmap.name)}()"
    )
    return out


def _function_sql(tmap: TableMap, cols: list[Column]) -> str:
    writable = {c.name for c in cols if not c.generated}
    ups = [c for c in tmap.up if c in writable]
    downs = list(tmap.down)
    legacy_sources = sorted({s for c in ups for s in placeholders(tmap.up[c])} | set(downs))
    new_sources = sorted({s for c in downs for s in placeholders(tmap.down[c])} | set(ups))
    declare = [f"l_{n} boolean;" for n in legacy_sources] + [f"p_{n} boolean;" for n in new_sources]
    up_all = [f"NEW.{shadow(c)} := {_up(tmap, c)};" for c in ups]
    down_all = [f"NEW.{c} := {_down(tmap, c)};" for c in downs]
    json = {c.name for c in columns_of(legacy_snapshot(), tmap.name) if c.type == "json"}
    flags = [
        f"l_{n} := NEW.{n}::text IS DISTINCT FROM OLD.{n}::text;"
        if n in json
        else f"l_{n} := NEW.{n} IS DISTINCT FROM OLD.{n};"
        for n in legacy_sources
    ] + [f"p_{n} := NEW.{shadow(n)} IS DISTINCT FROM OLD.{shadow(n)};" for n in new_sources]
    partial = []
    for c in ups:
        changed = " OR ".join(f"l_{s}" for s in placeholders(tmap.up[c])) or "false"
        partial.append(
            f"IF ({changed}) AND NOT p_{c} THEN NEW.{shadow(c)} := {_up(tmap, c)}; END IF;"
        )
    for c in downs:
        changed = " OR ".join(f"p_{s}" for s in placeholders(tmap.down[c])) or "false"
        partial.append(f"IF ({changed}) AND NOT l_{c} THEN NEW.{c} := {_down(tmap, c)}; END IF;")
    body = "\n    ".join(
        [
            f"IF current_setting('{BACKFILL_GUC}', true) = 'set' THEN",
            "  RETURN NEW;  -- the backfill's UPDATE computed every column itself",
            "ELSIF TG_OP = 'INSERT' THEN",
            f"  IF NEW.{shadow(tmap.sentinel)} IS NULL THEN",
            *("    " + s for s in up_all),
            "  ELSE",
            *("    " + s for s in down_all),
            "  END IF;",
            f"ELSIF current_setting('{BACKFILL_GUC}', true) = 'on' THEN",
            *("  " + s for s in up_all),
            f"ELSIF current_setting('{BACKFILL_GUC}', true) = 'down' THEN",
            *("  " + s for s in down_all),
            "ELSE",
            *("  " + s for s in flags),
            *("  " + s for s in partial),
            "END IF;",
            "RETURN NEW;",
        ]
    )
    return (
        f"CREATE OR REPLACE FUNCTION {trigger_name(tmap.name)}() RETURNS trigger\n"
        "LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$\n"
        f"DECLARE\n    {' '.join(declare)}\nBEGIN\n    {body}\nEND\n$fn$"
    )


def view_sql(tmap: TableMap, schema: str) -> str:
    cols = package_columns(tmap.name)
    shown = ([] if "id" in tmap.dropped else ["id"]) + [
        f"{shadow(c.name)} AS {c.name}" for c in cols
    ]
    return (
        f"CREATE OR REPLACE VIEW {VIEW_SCHEMA}.{tmap.name} AS SELECT {', '.join(shown)}"
        f" FROM {quoted(schema)}.{tmap.name}"
    )


def quoted(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def run_in_transaction(conn: psycopg.Connection[Any], statements: list[str]) -> None:
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.encode())


def current_schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("no current schema")
    return str(row[0])


def apply_expand(
    conn: psycopg.Connection[Any],
    *,
    batch_size: int = 5_000,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    """The yoyo step: DDL per table (short transactions), views, then the backfill.

    On an error the expand is undone (``rollback_expand``) before the error is raised again, so a
    failure leaves the database as it was. A kill leaves a partial expand that the next run
    finishes: every statement is idempotent and the backfill is idempotent too.
    """
    conn.autocommit = True
    schema = current_schema(conn)
    try:
        run_in_transaction(conn, list(FUNCTIONS))
        for tmap in TABLES:
            run_in_transaction(conn, table_sql(tmap))
        run_in_transaction(
            conn,
            [
                f"CREATE SCHEMA IF NOT EXISTS {VIEW_SCHEMA}",
                *(view_sql(t, schema) for t in TABLES),
                f"CREATE OR REPLACE VIEW {VIEW_SCHEMA}._yoyo_migration AS"
                f" SELECT * FROM {quoted(schema)}._yoyo_migration",
            ],
        )
        for tmap in TABLES:
            done = backfill(conn, tmap.name, batch_size=batch_size)
            if progress is not None:
                progress(tmap.name, done)
    except BaseException:
        if not conn.closed:
            conn.rollback()
            rollback_expand(conn)
        raise


def _touched(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname LIKE '\\_pa\\_%%' AND NOT attisdropped)"
        " OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgname = %s)",
        (table, table, trigger_name(table)),
    ).fetchone()
    return bool(row and row[0])


def rollback_expand(conn: psycopg.Connection[Any]) -> None:
    """Undo expand: views, triggers, functions, shadow columns. Legacy values were never written."""
    conn.autocommit = True
    statements = [f"DROP VIEW IF EXISTS {VIEW_SCHEMA}.{t.name}" for t in TABLES]
    statements.append(f"DROP VIEW IF EXISTS {VIEW_SCHEMA}._yoyo_migration")
    statements.append(f"DROP SCHEMA IF EXISTS {VIEW_SCHEMA}")
    run_in_transaction(conn, statements)
    for tmap in reversed(TABLES):
        if not _touched(conn, tmap.name):
            continue  # nothing of ours there: take no lock on it
        drops = ", ".join(
            f"DROP COLUMN IF EXISTS {shadow(c.name)}" for c in reversed(package_columns(tmap.name))
        )
        run_in_transaction(
            conn,
            [
                f"DROP TRIGGER IF EXISTS {trigger_name(tmap.name)} ON {tmap.name}",
                f"DROP FUNCTION IF EXISTS {trigger_name(tmap.name)}()",
                f"ALTER TABLE {tmap.name} {drops}",
            ],
        )
    run_in_transaction(conn, [f"DROP FUNCTION IF EXISTS {f}" for f in FUNCTION_NAMES])
