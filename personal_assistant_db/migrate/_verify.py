"""``pa-db migrate verify``: is the live schema exactly what the applied migrations promise?

Read-only. It checks, and reports every problem it finds:

1. content drift: the MANIFEST against the shipped files, and the sha256 recorded at apply time
   against today's files (yoyo itself records only a hash of the ID);
2. history: applied IDs the package does not ship, and an applied set that is not a prefix of the
   shipped order;
3. the catalog snapshot of the live schema against the snapshot expected at the applied version
   (shipped in ``migrations/SNAPSHOTS.json``, kept current by the stairway test);
4. no constraint left NOT VALID, no index left INVALID (a failed CREATE INDEX CONCURRENTLY);
5. no orphan rows: every foreign key's child rows have their parent.

It owns only the package's objects (ownership.py): the app's own tables in the same schema, and
the indexes and triggers it adds to the package's tables, are listed in the notes, never drift;
objects an extension owns are not compared at all. Checks 4 and 5 cover the package's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from . import snapshot as schema_mod
from .adoption.steps import ADOPTION_IDS, CONTRACT_ID, EXPAND_ID, adopted_view
from .ownership import package_tables, split_differences
from .runner import Runner
from .source import expected_snapshots, read_manifest, shipped, shipped_ids
from .target import Source, target_of

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    applied: tuple[str, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()  # facts worth knowing that are not failures

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(source: Source) -> VerifyReport:
    """Every problem found (an empty ``problems`` means the database is as shipped)."""
    target = target_of(source)
    with Runner(target) as runner:
        applied = runner.applied()
        recorded = runner.recorded_hashes()
    problems = _history_problems(applied, recorded)
    notes = [
        f"{mid} was applied without pa-db (plain yoyo): no recorded sha256, so only the "
        "snapshot comparison covers it"
        for mid in applied
        if mid in shipped_ids() and mid not in recorded
    ]
    expected = _expected(applied)
    tables = sorted(package_tables(expected or {}))
    with target.connect() as conn:
        live = schema_mod.snapshot(conn, target.schema)
        if expected is None:
            problems.append(f"schema: no expected snapshot for applied version {_head(applied)!r}")
        elif EXPAND_ID in applied and CONTRACT_ID not in applied:
            problems.append(
                "adoption: expand applied, contract pending: the schema is compared after contract"
            )
        else:
            if CONTRACT_ID in applied:  # ids stay integer on an adopted database (adopting.md)
                expected, live = adopted_view(expected), adopted_view(live)
            drift, foreign = split_differences(expected, live)
            problems += [f"schema: {line}" for line in drift]
            notes += foreign
        problems += _validity_problems(conn, tables)
        problems += _orphan_problems(conn, tables)
    return VerifyReport(applied=tuple(applied), problems=tuple(problems), notes=tuple(notes))


def _history_problems(applied: list[str], recorded: dict[str, str]) -> list[str]:
    ids = shipped_ids()
    manifest = read_manifest()
    current = {m.id: m.sha256 for m in shipped()}
    problems = [
        f"drift: {mid} differs from the MANIFEST (the package's migration file was edited)"
        for mid in ids
        if manifest.get(mid) != current[mid]
    ]
    for mid in applied:
        if mid in ADOPTION_IDS:
            continue
        if mid not in current:
            problems.append(f"history: {mid} is applied but this package does not ship it")
        elif mid in recorded and recorded[mid] != current[mid]:
            problems.append(
                f"drift: {mid} changed after it was applied (recorded sha256 "
                f"{recorded[mid][:12]}, package {current[mid][:12]})"
            )
    known = [i for i in applied if i in current]
    if set(known) != set(ids[: len(known)]):
        problems.append(
            "history: the applied migrations are not a prefix of the shipped order: "
            + ", ".join(known)
        )
    return problems


def _head(applied: list[str]) -> str:
    known = set(applied)
    prefix = [i for i in shipped_ids() if i in known]
    return prefix[-1] if prefix else ""


def _expected(applied: list[str]) -> schema_mod.Snapshot | None:
    found: schema_mod.Snapshot | None = expected_snapshots().get(_head(applied))
    return found


def _validity_problems(conn: psycopg.Connection[Any], tables: list[str]) -> list[str]:
    rows = conn.execute(
        """
        SELECT 'constraint ' || conrelid::regclass || '.' || conname || ' is NOT VALID'
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE NOT convalidated AND connamespace = current_schema()::regnamespace
          AND c.relname = ANY(%(tables)s)
        UNION ALL
        SELECT 'index ' || indexrelid::regclass || ' is INVALID (a failed concurrent build?)'
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        WHERE NOT x.indisvalid AND i.relnamespace = current_schema()::regnamespace
          AND c.relname = ANY(%(tables)s)
        """,
        {"tables": tables},
    ).fetchall()
    return [f"validity: {r[0]}" for r in rows]


def _orphan_problems(conn: psycopg.Connection[Any], tables: list[str]) -> list[str]:
    fks = conn.execute(
        """
        SELECT k.conname, c.relname, p.relname,
               ARRAY(SELECT attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                     ORDER BY u.i),
               ARRAY(SELECT attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                     ORDER BY u.i)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
        WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
          AND c.relname = ANY(%(tables)s)
        ORDER BY 1
        """,
        {"tables": tables},
    ).fetchall()
    problems = []
    for name, child, parent, cols, pcols in fks:
        match = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(pc), sql.Identifier(cc))
            for cc, pc in zip(cols, pcols, strict=True)
        )
        present = sql.SQL(" AND ").join(
            sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(cc)) for cc in cols
        )
        query = sql.SQL(
            "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})"
        ).format(sql.Identifier(child), present, sql.Identifier(parent), match)
        row = conn.execute(query).fetchone()
        if row and row[0]:
            problems.append(f"orphans: {row[0]} row(s) of {child} break {name}")
    return problems
