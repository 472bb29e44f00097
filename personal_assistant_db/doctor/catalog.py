"""What this server's statistics catalogs hold, read from the catalogs themselves.

The doctor picks columns and views by what exists, not by a version table, so a column renamed
or removed never crashes it; where neither shape exists the finding says the server does not
provide it. What each version has (docs/doctor.md):

| catalog | 14 | 15 | 16 | 17 | 18 |
|---|---|---|---|---|---|
| pg_stat_statements | 1.9 | 1.10 | 1.10 | 1.11 | 1.12 |
| statement I/O time | blk_read_time | blk_read_time | blk_read_time | shared_blk_read_time | shared_blk_read_time |
| checkpoint counts | pg_stat_bgwriter | pg_stat_bgwriter | pg_stat_bgwriter | pg_stat_checkpointer | pg_stat_checkpointer |
| backend writes | pg_stat_bgwriter | pg_stat_bgwriter | pg_stat_io | pg_stat_io | pg_stat_io |

Names are resolved on the session's ``search_path``, as the analyses' own queries resolve them.
"""  # noqa: E501 - the table is one row per catalog

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .findings import Finding, Severity

__all__ = [
    "Catalog",
    "not_provided",
    "read_catalog",
    "statement_columns_sql",
]

_COLUMNS = text("""
SELECT attname FROM pg_attribute
WHERE attrelid = to_regclass(CAST(:view AS text)) AND attnum > 0 AND NOT attisdropped
""")


@dataclass(frozen=True)
class Catalog:
    """The statistics shapes one server offers (column names per view; empty: no such view)."""

    statements: frozenset[str] = frozenset()
    bgwriter: frozenset[str] = frozenset()
    checkpointer: frozenset[str] = frozenset()
    stat_io: frozenset[str] = frozenset()

    @property
    def checkpoints(self) -> str | None:
        """The view holding checkpoint counts: pg_stat_checkpointer (17+), pg_stat_bgwriter."""
        if {"num_timed", "num_requested"} <= self.checkpointer:
            return "pg_stat_checkpointer"
        if {"checkpoints_timed", "checkpoints_req"} <= self.bgwriter:
            return "pg_stat_bgwriter"
        return None

    @property
    def backend_writes(self) -> str | None:
        """Where buffer writes by client backends are counted: pg_stat_io (16+) or
        pg_stat_bgwriter.buffers_backend (up to 16)."""
        if {"backend_type", "object", "context", "writes"} <= self.stat_io:
            return "pg_stat_io"
        if {"buffers_backend", "buffers_checkpoint", "buffers_clean"} <= self.bgwriter:
            return "pg_stat_bgwriter"
        return None

    def as_dict(self) -> dict[str, str | None]:
        io = self.statement_io()
        return {
            "statement_time": self.statement_time()[0],
            "statement_io_time": io[0] if io else None,
            "checkpoints": self.checkpoints,
            "backend_writes": self.backend_writes,
        }

    def statement_time(self) -> tuple[str, str] | tuple[None, None]:
        """(total, mean) columns: *_exec_time (PG 13+) or total_time/mean_time."""
        for pair in (("total_exec_time", "mean_exec_time"), ("total_time", "mean_time")):
            if set(pair) <= self.statements:
                return pair
        return None, None

    def statement_io(self) -> tuple[str, str] | None:
        """(read, write) I/O time columns: shared_blk_*_time (1.11, PG 17+) or blk_*_time."""
        for pair in (
            ("shared_blk_read_time", "shared_blk_write_time"),
            ("blk_read_time", "blk_write_time"),
        ):
            if set(pair) <= self.statements:
                return pair
        return None


async def read_catalog(conn: AsyncConnection, *, statements: bool) -> Catalog:
    """Read the views' columns; ``statements``: pg_stat_statements is loaded and created."""

    async def columns(view: str) -> frozenset[str]:
        result = await conn.execute(_COLUMNS, {"view": view})
        return frozenset(str(r[0]) for r in result)

    return Catalog(
        statements=await columns("pg_stat_statements") if statements else frozenset(),
        bgwriter=await columns("pg_stat_bgwriter"),
        checkpointer=await columns("pg_stat_checkpointer"),
        stat_io=await columns("pg_stat_io"),
    )


def statement_columns_sql(catalog: Catalog) -> str | None:
    """The select list for pg_stat_statements on this shape, or None when it has no time
    columns at all. I/O time is NULL where the view has none."""
    total, mean = catalog.statement_time()
    if total is None:
        return None
    io = catalog.statement_io()
    read, write = (f"s.{io[0]}::float8", f"s.{io[1]}::float8") if io else ("NULL", "NULL")
    return (
        "s.queryid, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 300) AS query, s.calls, "
        f"s.rows, s.{total}::float8 AS total_ms, s.{mean}::float8 AS mean_ms, "
        f"{read} AS io_read_ms, {write} AS io_write_ms"
    )


def not_provided(what: str, version: str, needs: str) -> Finding:
    """A plain INFO finding: this server does not provide what an analysis reads."""
    return Finding(
        Severity.INFO,
        "version",
        what,
        f"PostgreSQL {version} does not provide {needs}: the {what} analysis was skipped",
        {"server_version": version},
    )
