"""Per-table checksums of the legacy columns: the proof that rolling back expand gave back every
row and value. Columns added by expand (``_pa_*``) are left out; every legacy column, in its
catalog order, is hashed as text, rows in primary-key order."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from .mapping import SHADOW
from .shape import TABLE_NAMES

__all__ = ["checksums"]


def checksums(
    conn: psycopg.Connection[Any], tables: tuple[str, ...] = TABLE_NAMES
) -> dict[str, str]:
    """{table: md5 over its rows} for the legacy tables in the current schema."""
    result: dict[str, str] = {}
    for table in tables:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (table,),
            ).fetchall()
            if not str(r[0]).startswith(SHADOW)
        ]
        if not names:
            continue
        row_text = sql.SQL(" || '|' || ").join(
            sql.SQL("coalesce(quote_literal({}::text), 'NULL')").format(sql.Identifier(n))
            for n in names
        )
        query = sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(md5({}), '' ORDER BY id), '')) FROM {}"
        ).format(row_text, sql.Identifier(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        result[table] = f"{row[0]}:{row[1]}"
    return result
