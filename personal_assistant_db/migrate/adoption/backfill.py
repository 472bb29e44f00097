"""The backfill: shadow columns computed from the legacy row (or back), in batches of ids.

Each batch is one set-based ``UPDATE`` in its own short transaction, with ``pa_adopt.backfill``
set so the sync trigger stands aside; the trigger's expressions are evaluated by the executor
(several times faster than the trigger's row-by-row assignments). Idempotent: a run killed at any
point is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from .mapping import TABLES, placeholders, render, shadow
from .shape import package_columns

__all__ = ["BACKFILL_GUC", "backfill"]

BACKFILL_GUC = "pa_adopt.backfill"


def backfill(
    conn: psycopg.Connection[Any], table: str, *, batch_size: int, direction: str = "on"
) -> int:
    """Compute every shadow column from the legacy row (``direction="down"``: every legacy
    column from the package's), in batches of ids; returns the rows done."""
    row = conn.execute(sql.SQL("SELECT min(id), max(id) FROM {}").format(sql.Identifier(table)))
    low, high = row.fetchone() or (None, None)
    if low is None or high is None:
        return 0
    total = 0
    statement = _backfill_sql(table, direction)
    for start in _ranges(int(low), int(high), batch_size):
        with conn.transaction():
            conn.execute(f"SET LOCAL {BACKFILL_GUC} = 'set'")
            cur = conn.execute(statement, (start, start + batch_size))
            total += cur.rowcount
    return total


def _backfill_sql(table: str, direction: str) -> bytes:
    """One set-based UPDATE per batch."""
    tmap = next(t for t in TABLES if t.name == table)
    writable = {c.name for c in package_columns(table) if not c.generated}
    if direction == "down":
        sets = []
        for c in tmap.down:
            text = tmap.down[c].replace("OLD_backup_codes", "backup_codes")
            sets.append(f"{c} = {render(text, {n: shadow(n) for n in placeholders(text)})}")
    else:
        sets = [
            f"{shadow(c)} = {render(tmap.up[c], {n: n for n in placeholders(tmap.up[c])})}"
            for c in tmap.up
            if c in writable
        ]
    return f"UPDATE {table} SET {', '.join(sets)} WHERE id >= %s AND id < %s".encode()


def _ranges(low: int, high: int, size: int) -> Iterator[int]:
    start = low
    while start <= high:
        yield start
        start += size
