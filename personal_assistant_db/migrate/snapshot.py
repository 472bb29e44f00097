"""A normalized snapshot of one schema, read from the catalog (not a pg_dump diff).

``snapshot(conn, schema)`` returns plain data: tables and columns with types, constraints via
``pg_get_constraintdef``, indexes via ``pg_get_indexdef``, triggers, functions, types, sequences
and views. The schema's own name is stripped from every definition, so a snapshot taken in
``public`` equals one taken in ``?schema=auth``. Migration bookkeeping (yoyo's tables and ours)
is left out: a database rolled back to base has an empty snapshot. So is every object an
extension owns (``pg_depend`` deptype ``'e'``): ``CREATE EXTENSION pg_stat_statements`` adds
nothing. A column's position counts live columns only, so dropping and re-adding a column
compares equal; NOT NULL constraint rows (PostgreSQL 18+) are left out, since ``NOT NULL``
already shows on the column.

``diff(expected, actual)`` lists the differences as readable lines. ``verify``, the stairway
tests and the Hypothesis state machine all compare snapshots with it.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from .._sql import quote_ident

__all__ = ["BOOKKEEPING_TABLES", "Snapshot", "diff", "flatten", "snapshot"]

Snapshot = dict[str, dict[str, Any]]

BOOKKEEPING_TABLES = frozenset(
    {"_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock", "_pa_db_migration_hashes"}
)
_NOT_BOOKKEEPING = (
    "NOT (c.relname = ANY(%(bookkeeping)s) OR c.relname LIKE 'yoyo\\_tmp\\_%%'"
    " OR c.relname LIKE '\\_yoyo\\_%%')"
)


def _not_extension(catalog: str, oid: str) -> str:
    """Objects an extension owns (``pg_depend.deptype = 'e'``: CREATE EXTENSION made them) are
    the extension's, never the schema's: pg_stat_statements' views and functions, citext's
    type and operators, pg_trgm's functions."""
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass"
        f" AND e.objid = {oid} AND e.deptype = 'e')"
    )


_NOT_EXTENSION = _not_extension("pg_class", "c.oid")

_QUERIES: dict[str, str] = {
    "columns": f"""
        SELECT c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS'
                                     WHEN 'd' THEN ' IDENTITY BY DEFAULT' ELSE '' END
               || CASE WHEN a.attgenerated = 's'
                       THEN ' GENERATED ' || pg_get_expr(d.adbin, d.adrelid)
                       WHEN d.adbin IS NOT NULL
                       THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END
               || ' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped AND {_NOT_BOOKKEEPING} AND {_NOT_EXTENSION}
    """,
    "constraints": f"""
        SELECT c.relname || '.' || k.conname, k.contype::text || ' ' || pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = %(schema)s::regnamespace AND k.contype <> 'n'
          AND {_NOT_BOOKKEEPING} AND {_NOT_EXTENSION}
    """,
    "indexes": f"""
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        WHERE i.relnamespace = %(schema)s::regnamespace AND {_NOT_BOOKKEEPING} AND {_NOT_EXTENSION}
          AND {_not_extension("pg_class", "i.oid")}
    """,
    "triggers": f"""
        SELECT c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal
          AND {_NOT_BOOKKEEPING} AND {_NOT_EXTENSION}
    """,
    "functions": f"""
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               pg_get_functiondef(p.oid)
        FROM pg_proc p
        WHERE p.pronamespace = %(schema)s::regnamespace AND p.prokind IN ('f', 'p')
          AND {_not_extension("pg_proc", "p.oid")}
    """,
    "types": f"""
        SELECT t.typname,
               t.typtype::text || ' ' || COALESCE(
                   (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                    FROM pg_enum e WHERE e.enumtypid = t.oid),
                   format_type(t.typbasetype, t.typtypmod), '')
        FROM pg_type t
        LEFT JOIN pg_class c ON c.oid = t.typrelid
        WHERE t.typnamespace = %(schema)s::regnamespace
          AND (t.typrelid = 0 OR c.relkind = 'c') AND t.typelem = 0
          AND {_not_extension("pg_type", "t.oid")}
    """,
    "sequences": f"""
        SELECT c.relname,
               format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' by '
               || s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax
               || ' cycle ' || s.seqcycle
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND {_NOT_BOOKKEEPING} AND {_NOT_EXTENSION}
    """,
    "views": f"""
        SELECT c.relname, c.relkind::text || ' ' || pg_get_viewdef(c.oid)
        FROM pg_class c
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('v', 'm')
          AND {_NOT_EXTENSION}
    """,
}


def current_schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise LookupError("no current schema: the search_path names no existing schema")
    return str(row[0])


def snapshot(conn: psycopg.Connection[Any], schema: str | None = None) -> Snapshot:
    """The normalized catalog snapshot of ``schema`` (default: the current schema)."""
    name = schema or current_schema(conn)
    params = {"schema": quote_ident(name), "bookkeeping": sorted(BOOKKEEPING_TABLES)}
    strip = _stripper(name)
    result: Snapshot = {}
    for kind, query in _QUERIES.items():
        rows = conn.execute(query, params).fetchall()
        result[kind] = {str(key): strip(str(value)) for key, value in rows}
    return result


def _stripper(schema: str) -> Any:
    # Definitions qualify names with the schema when it is not on the search_path (and
    # pg_get_indexdef/triggerdef always do); drop it in both its bare and quoted forms.
    pattern = re.compile(
        r"(?<![\w\"])(?:" + re.escape(quote_ident(schema)) + "|" + re.escape(schema) + r")\."
    )

    def strip(text: str) -> str:
        return pattern.sub("", text)

    return strip


def flatten(snap: Snapshot) -> set[str]:
    return {
        f"{kind} {key}: {value}" for kind, items in snap.items() for key, value in items.items()
    }


def diff(expected: Snapshot, actual: Snapshot) -> list[str]:
    """Readable differences: ``- kind name: def`` missing, ``+ kind name: def`` unexpected."""
    want, have = flatten(expected), flatten(actual)
    return sorted([f"- {x}" for x in want - have] + [f"+ {x}" for x in have - want])
