"""Foreign keys without an index: deleting or updating a referenced row then scans the whole
referencing table (and holds its lock that long)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._sql import qualified, quote_ident
from .findings import Finding, Severity
from .indexes import SCHEMA_FILTER, Index

__all__ = ["fk_covering", "fk_findings", "read_foreign_keys"]

_FOREIGN_KEYS = text(f"""
SELECT n.nspname AS schema, t.relname AS table, c.conname AS name, c.conkey::int2[] AS cols,
       rn.nspname AS ref_schema, r.relname AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS colnames,
       GREATEST(t.reltuples, 0)::bigint AS est_rows, pg_relation_size(t.oid) AS size
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.contype = 'f' AND t.relkind = 'r' AND {SCHEMA_FILTER}
ORDER BY n.nspname, t.relname, c.conname
""")


async def read_foreign_keys(conn: AsyncConnection, schema: str | None) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(_FOREIGN_KEYS, {"schema": schema})).mappings()]


def _index_name(table: str, columns: Sequence[str]) -> str:
    name = f"{table}_{'_'.join(columns)}_idx"
    raw = name.encode()
    return raw[:63].decode(errors="ignore") if len(raw) > 63 else name


def _covers(ix: Index, fk: dict[str, Any]) -> bool:
    cols = tuple(fk["cols"])
    return (
        ix.schema == fk["schema"]
        and ix.table == fk["table"]
        and ix.pred is None
        and ix.is_valid
        and ix.am == "btree"
        and len(ix.keys) >= len(cols)
        and set(ix.keys[: len(cols)]) == set(cols)
    )


def fk_covering(fks: Sequence[dict[str, Any]], indexes: Sequence[Index]) -> set[str]:
    """Indexes that are the only cover of some foreign key: never advised as unused."""
    only: set[str] = set()
    for fk in fks:
        covering = [ix.label for ix in indexes if _covers(ix, fk)]
        if len(covering) == 1:
            only.add(covering[0])
    return only


def fk_findings(fks: Sequence[dict[str, Any]], indexes: Sequence[Index]) -> list[Finding]:
    out = []
    for fk in fks:
        if any(_covers(ix, fk) for ix in indexes):
            continue
        names = [str(c) for c in fk["colnames"]]
        column_list = ", ".join(quote_ident(c) for c in names)
        table = qualified(fk["schema"], fk["table"])
        index_name = quote_ident(_index_name(fk["table"], names))
        out.append(
            Finding(
                Severity.WARNING,
                "unindexed_foreign_key",
                f"{fk['schema']}.{fk['table']}.{fk['name']}",
                f"foreign key {fk['name']!r} ({', '.join(names)}) -> "
                f"{fk['ref_schema']}.{fk['ref_table']} has no index starting with its columns: "
                "deletes/updates of the referenced row scan the whole table",
                {"table_rows_estimate": fk["est_rows"], "table_size_bytes": fk["size"]},
                f"CREATE INDEX CONCURRENTLY {index_name} ON {table} ({column_list});",
            )
        )
    return out
