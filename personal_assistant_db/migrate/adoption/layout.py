"""Recognise the layout of a schema from its catalog: columns (type, nullability, default),
constraints and indexes, compared with the legacy layout's snapshot. Names are not trusted.

- the exact legacy layout (plus the app's own columns, indexes and tables, listed as extras) ->
  ``legacy``; our own expand columns on it -> ``legacy`` too (a re-run after a crash);
- the package's schema -> ``package`` (nothing to adopt);
- anything else, including ai_assistant's older ``username``/``password_hash`` layout ->
  ``unknown``, with the exact differences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from ..snapshot import Snapshot, snapshot
from .mapping import SHADOW
from .shape import TABLE_NAMES, columns_of, legacy_snapshot

__all__ = ["Layout", "privileges", "recognise"]

_OURS = re.compile(r"(^|\.)(_pa_|pa_adopt)")


@dataclass(frozen=True)
class Layout:
    verdict: str  # legacy | package | unknown
    differences: tuple[str, ...]
    extras: tuple[str, ...]
    expand_started: bool


def _table(key: str) -> str:
    return key.partition(".")[0]


def _index_shape(definition: str) -> str:
    return re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ", r"CREATE \1INDEX ON ", definition)


def recognise(conn: psycopg.Connection[Any], schema: str) -> Layout:
    live = snapshot(conn, schema)
    return compare(live)


def compare(live: Snapshot) -> Layout:
    want = legacy_snapshot()
    tables = {_table(k) for k in live["columns"]}
    columns = {k for k in live["columns"] if not _OURS.search(k)}
    started = any(k.partition(".")[2].startswith(SHADOW) for k in live["columns"])
    if "users" not in tables:
        return Layout("unknown", ("no table users in this schema",), (), False)
    if "users.hashed_password" not in columns and "users.password_hash" in columns:
        has_hash_format = "users.users_password_hash_format" in live["constraints"]
        if has_hash_format or "users.display_name" in columns:
            return Layout("package", (), (), False)
    differences: list[str] = []
    extras: list[str] = []
    for table in TABLE_NAMES:
        if table not in tables:
            differences.append(f"table {table}: missing")
            continue
        have = {c.name: c for c in columns_of(live, table)}
        for col in columns_of(want, table):
            found = have.get(col.name)
            if found is None:
                differences.append(
                    f"column {table}.{col.name}: missing (expected {col.definition})"
                )
            elif found.definition != col.definition:
                shown = f"expected {col.definition}, found {found.definition}"
                differences.append(f"column {table}.{col.name}: {shown}")
        known = {c.name for c in columns_of(want, table)}
        for name in sorted(set(have) - known):
            if not name.startswith(SHADOW):
                extras.append(f"column {table}.{name} ({have[name].definition})")
    differences += _compare_defs(want["constraints"], live["constraints"], extras, "constraint")
    want_ix = {k: _index_shape(v) for k, v in want["indexes"].items()}
    live_ix = {k: _index_shape(v) for k, v in live["indexes"].items() if not _OURS.search(k)}
    differences += _compare_defs(want_ix, live_ix, extras, "index", by_table=False)
    for table in sorted(tables - set(TABLE_NAMES)):
        extras.append(f"table {table}")
    verdict = "legacy" if not differences else "unknown"
    return Layout(verdict, tuple(differences), tuple(extras), started)


def _compare_defs(
    want: dict[str, str],
    have: dict[str, str],
    extras: list[str],
    kind: str,
    *,
    by_table: bool = True,
) -> list[str]:
    """Compare definitions as (table, definition) sets: names may differ, shapes may not."""

    def key(name: str, definition: str) -> tuple[str, str]:
        if by_table:
            return (_table(name), definition)
        return ("", definition)

    wanted = {key(n, d): n for n, d in want.items()}
    present = {key(n, d): n for n, d in have.items() if not _OURS.search(n)}
    tables = {_table(n) for n in want} if by_table else set()
    missing = [f"{kind} {wanted[k]}: missing ({k[1]})" for k in sorted(set(wanted) - set(present))]
    for k in sorted(set(present) - set(wanted)):
        if not by_table or k[0] in tables:
            extras.append(f"{kind} {present[k]} ({k[1]})")
    return missing


def privileges(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """What the connected role may not do that adoption needs (empty when all is well)."""
    problems: list[str] = []
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace"
        " AND c.relname = ANY(%s) AND NOT pg_has_role(c.relowner, 'USAGE')",
        (_quoted(schema), list(TABLE_NAMES)),
    ).fetchall()
    if rows:
        names = ", ".join(sorted(str(r[0]) for r in rows))
        who = conn.execute("SELECT current_user").fetchone()
        problems.append(
            f"role {who[0] if who else '?'} does not own {names}: adoption alters these tables;"
            " run it as their owner (or a role that is a member of it)"
        )
    row = conn.execute(
        "SELECT has_database_privilege(current_database(), 'CREATE')"
        " OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pa_adopt'"
        " AND pg_has_role(nspowner, 'USAGE'))"
    ).fetchone()
    if not (row and row[0]):
        problems.append("the role may not create schema pa_adopt (needs CREATE on the database)")
    return problems


def _quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'
