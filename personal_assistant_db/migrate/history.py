"""What ``/health/ready`` needs to know about migrations: applied vs shipped, on SQLAlchemy only.

This module is the one part of ``migrate/`` a web process loads. It imports neither yoyo nor
psycopg: it reads yoyo's ``_yoyo_migration`` table over the app's own async connection and
compares it with the IDs shipped in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._sql import quote_ident
from .adoption.steps import EXPAND_ID, covered_ids
from .source import shipped_ids

__all__ = ["MigrationStatus", "migration_status"]


@dataclass(frozen=True)
class MigrationStatus:
    """Applied and pending migration IDs (pending in apply order)."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return not self.pending


async def migration_status(conn: AsyncConnection, *, schema: str | None = None) -> MigrationStatus:
    """Applied/pending from yoyo's ``_yoyo_migration``; a missing table means all pending.

    Cheap enough for a readiness probe: a ``to_regclass`` lookup plus one query on the table; the
    shipped IDs are read from the package once per process. ``schema`` is the ``?schema=``
    option (default: the connection's search_path, as yoyo uses).
    """
    table = f"{quote_ident(schema)}._yoyo_migration" if schema else "_yoyo_migration"
    exists = (await conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})).scalar()
    ids = shipped_ids()
    if not exists:
        return MigrationStatus(applied=(), pending=ids)
    rows = await conn.execute(
        text(f"SELECT migration_id FROM {table} ORDER BY applied_at_utc, migration_id")
    )
    applied = tuple(str(r[0]) for r in rows)
    done = set(applied)
    if EXPAND_ID in done:  # half-adopted: the package's tables are served by pa_adopt's views
        done |= set(covered_ids())
    return MigrationStatus(applied=applied, pending=tuple(i for i in ids if i not in done))
