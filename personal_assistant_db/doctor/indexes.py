"""Index analyses: unused, duplicate/redundant and invalid indexes.

The catalog is read once (``pg_index`` with its operator classes, collations, sort options,
expressions and predicates, so that "the same definition" means the same thing PostgreSQL would
use); the comparisons are plain Python over those rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._sql import qualified, quote_ident
from .findings import Finding, Severity
from .owned import OwnedIndex

__all__ = [
    "SCHEMA_FILTER",
    "Index",
    "invalid_findings",
    "read_indexes",
    "redundant_findings",
    "unused_findings",
]

SCHEMA_FILTER = """(
    (CAST(:schema AS text) IS NULL AND n.nspname <> 'information_schema'
     AND n.nspname NOT LIKE 'pg\\_%')
    OR n.nspname = CAST(:schema AS text))"""

_INDEXES = text(f"""
SELECT n.nspname AS schema, t.relname AS table, i.relname AS name, x.indnkeyatts AS nkey,
       x.indkey::int2[] AS cols, x.indclass::oid[] AS opclasses,
       x.indcollation::oid[] AS collations, x.indoption::int2[] AS options,
       x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisvalid AS is_valid,
       pg_get_expr(x.indexprs, x.indrelid) AS exprs, pg_get_expr(x.indpred, x.indrelid) AS pred,
       am.amname AS am, c.conname AS constraint_name, c.contype::text AS constraint_type,
       pg_relation_size(x.indexrelid) AS size, COALESCE(s.idx_scan, 0) AS idx_scan,
       pg_get_indexdef(x.indexrelid) AS definition,
       ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
             ORDER BY k.ord) AS colnames
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_constraint c
       ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x')
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
WHERE t.relkind IN ('r', 'm') AND {SCHEMA_FILTER}
ORDER BY n.nspname, t.relname, i.relname
""")


@dataclass(frozen=True)
class Index:
    schema: str
    table: str
    name: str
    nkey: int
    cols: tuple[int, ...]
    opclasses: tuple[int, ...]
    collations: tuple[int, ...]
    options: tuple[int, ...]
    is_unique: bool
    is_primary: bool
    is_valid: bool
    exprs: str | None
    pred: str | None
    am: str
    constraint_name: str | None
    constraint_type: str | None
    size: int
    idx_scan: int
    definition: str
    colnames: tuple[str | None, ...]

    @property
    def keys(self) -> tuple[int, ...]:
        return self.cols[: self.nkey]

    @property
    def includes(self) -> tuple[int, ...]:
        return self.cols[self.nkey :]

    @property
    def ref(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}.{self.name}"

    def shape(self, n: int) -> tuple[Any, ...]:
        """What must match for the first ``n`` key columns to serve the same lookups."""
        return (self.keys[:n], self.opclasses[:n], self.collations[:n], self.options[:n])

    def drop_sql(self) -> str:
        if self.constraint_name:
            table = qualified(self.schema, self.table)
            return f"ALTER TABLE {table} DROP CONSTRAINT {quote_ident(self.constraint_name)};"
        return f"DROP INDEX CONCURRENTLY {self.ref};"


async def read_indexes(conn: AsyncConnection, schema: str | None) -> list[Index]:
    rows = (await conn.execute(_INDEXES, {"schema": schema})).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        for key in ("cols", "opclasses", "collations", "options", "colnames"):
            d[key] = tuple(d[key])
        out.append(Index(**d))
    return out


def _keep_rank(ix: Index) -> tuple[int, int, int, int]:
    """Higher is more worth keeping: constraint-backing, then unique, then used, then shorter."""
    return (ix.constraint_name is not None, ix.is_unique, ix.idx_scan, -len(ix.name))


def _redundant_by(a: Index, b: Index) -> str | None:
    """Why ``a`` is not needed given ``b`` (same table), or None."""
    if a.pred != b.pred or a.am != b.am or not a.is_valid or not b.is_valid:
        return None
    same_keys = a.shape(a.nkey) == b.shape(b.nkey) and a.exprs == b.exprs
    if same_keys and set(a.includes) <= set(b.cols):
        if a.is_unique and not b.is_unique:
            return None  # a enforces something b does not
        if b.constraint_name:
            return f"duplicates the constraint {b.constraint_name!r}"
        if b.is_unique and not a.is_unique:
            return f"duplicates the unique index {b.name!r}"
        return f"has the same definition as {b.name!r}"
    prefix = (
        a.am == "btree"
        and a.exprs is None
        and b.exprs is None
        and not a.is_unique
        and a.nkey < b.nkey
        and a.shape(a.nkey) == b.shape(a.nkey)
        and set(a.includes) <= set(b.cols)
    )
    return f"is a leading prefix of {b.name!r}" if prefix else None


def _columns(ix: Index) -> str:
    return ", ".join(c if c is not None else "<expression>" for c in ix.colnames[: ix.nkey])


def redundant_findings(
    indexes: Sequence[Index], owned: Mapping[str, OwnedIndex] | None = None
) -> tuple[list[Finding], set[str]]:
    """Duplicate and prefix-redundant indexes; one the migrations own is never the one dropped."""
    owned = owned or {}
    findings: list[Finding] = []
    dropped: set[str] = set()
    by_table: dict[tuple[str, str], list[Index]] = {}
    for ix in indexes:
        by_table.setdefault((ix.schema, ix.table), []).append(ix)
    for group in by_table.values():
        # Most worth keeping first, so an exact pair drops the weaker one.
        group = sorted(group, key=_keep_rank, reverse=True)
        for a in reversed(group):
            for b in group:
                if a is b or b.label in dropped:
                    continue
                reason = _redundant_by(a, b)
                if reason is None:
                    continue
                if a.constraint_name and not b.constraint_name:
                    continue  # never drop the constraint in favour of a plain index
                if a.label in owned:
                    continue  # the migrations own it: drop the other one, or neither
                dropped.add(a.label)
                kind = "redundant_index" if "prefix" in reason else "duplicate_index"
                findings.append(
                    Finding(
                        Severity.WARNING,
                        kind,
                        a.label,
                        f"index {a.name!r} ({_columns(a)}) {reason} ({_columns(b)})",
                        {
                            "size_bytes": a.size,
                            "idx_scan": a.idx_scan,
                            "kept_index": b.name,
                            "kept_index_scans": b.idx_scan,
                            "definition": a.definition,
                        },
                        a.drop_sql(),
                    )
                )
                break
    return findings, dropped


def unused_findings(
    indexes: Sequence[Index],
    skip: set[str],
    *,
    window_s: float | None,
    judge: bool,
    owned: Mapping[str, OwnedIndex] | None = None,
) -> list[Finding]:
    """Never-scanned indexes; one the migrations own is information with its reason, no DROP."""
    owned = owned or {}
    out = []
    for ix in indexes:
        if ix.idx_scan or ix.label in skip or ix.is_unique or ix.is_primary or ix.constraint_name:
            continue
        if not ix.is_valid:
            continue
        days = None if window_s is None else round(window_s / 86400, 2)
        summary = f"index {ix.name!r} ({_columns(ix)}) has not been scanned since stats reset"
        mine = owned.get(ix.label)
        if mine is not None:
            out.append(
                Finding(
                    Severity.INFO,
                    "unused_owned_index",
                    ix.label,
                    f"{summary}; it is {mine.reason}",
                    {
                        "idx_scan": 0,
                        "size_bytes": ix.size,
                        "stats_window_days": days,
                        "migration": mine.migration,
                    },
                    "",
                )
            )
            continue
        if not judge:
            summary += f" (statistics cover only {days} days; pass --since-reset to judge anyway)"
        out.append(
            Finding(
                Severity.WARNING if judge else Severity.INFO,
                "unused_index",
                ix.label,
                summary,
                {"idx_scan": 0, "size_bytes": ix.size, "stats_window_days": days},
                ix.drop_sql(),
            )
        )
    return out


def invalid_findings(indexes: Sequence[Index]) -> list[Finding]:
    return [
        Finding(
            Severity.WARNING,
            "invalid_index",
            ix.label,
            f"index {ix.name!r} is invalid (a failed CREATE INDEX CONCURRENTLY?): it is written "
            "on every change and never read",
            {"size_bytes": ix.size},
            f"DROP INDEX CONCURRENTLY {ix.ref}; then recreate it: {ix.definition};",
        )
        for ix in indexes
        if not ix.is_valid
    ]
