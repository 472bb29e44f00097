"""pg_stat_statements: slow and frequent statements, or a clear "not installed, here is how".

``shared_preload_libraries`` is checked before the view is touched (reading it unloaded raises).
Columns are chosen by what the view has (catalog.py): PG 13 renamed ``total_time``/``mean_time``
to ``*_exec_time``, PG 17 (1.11) ``blk_read_time``/``blk_write_time`` to ``shared_blk_*_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .catalog import Catalog, statement_columns_sql
from .findings import Finding, Severity

__all__ = [
    "StatementThresholds",
    "read_extension",
    "read_statements",
    "statement_findings",
    "statements_missing",
    "statements_state",
]

_EXTENSION = text("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'")


@dataclass(frozen=True)
class StatementThresholds:
    slow_ms: float = 500.0
    top_share: float = 0.2
    min_calls: int = 100
    limit: int = 10


def statements_state(settings: dict[str, dict[str, Any]], ext_version: str | None) -> str:
    """'ready', 'not_loaded' (not in shared_preload_libraries) or 'not_created'.

    Roles without pg_read_all_settings do not see shared_preload_libraries; then an installed
    extension is read, and the server itself says if it is not loaded.
    """
    row = settings.get("shared_preload_libraries")
    if row is not None:
        preload = [s.strip() for s in str(row["setting"]).split(",")]
        if "pg_stat_statements" not in preload:
            return "not_loaded"
    return "ready" if ext_version else "not_created"


async def read_extension(conn: AsyncConnection) -> str | None:
    value = (await conn.execute(_EXTENSION)).scalar()
    return None if value is None else str(value)


def statements_missing(state: str) -> Finding:
    if state == "not_loaded":
        action = (
            "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf (append to any "
            "existing list), restart PostgreSQL, then in this database: "
            "CREATE EXTENSION pg_stat_statements;"
        )
        summary = "pg_stat_statements is not loaded: slow and frequent statements are unknown"
    else:
        action = "CREATE EXTENSION pg_stat_statements;"
        summary = "pg_stat_statements is loaded but not created in this database"
    return Finding(
        Severity.INFO, "statements", "pg_stat_statements", summary, {"state": state}, action
    )


async def read_statements(
    conn: AsyncConnection, catalog: Catalog, t: StatementThresholds
) -> tuple[list[dict[str, Any]], float] | None:
    """The top statements by total time and the grand total; None when the view has no time
    columns this package knows."""
    columns = statement_columns_sql(catalog)
    total, _ = catalog.statement_time()
    if columns is None:
        return None
    base = """FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = current_database() AND s.query NOT LIKE '%pg_stat_statements%'"""
    query = text(f"SELECT {columns} {base} ORDER BY s.{total} DESC LIMIT :limit")
    rows = (await conn.execute(query, {"limit": t.limit})).mappings().all()
    grand = (
        await conn.execute(text(f"SELECT COALESCE(sum(s.{total}), 0)::float8 {base}"))
    ).scalar()
    return [dict(r) for r in rows], float(grand or 0.0)


def statement_findings(
    rows: list[dict[str, Any]], grand_ms: float, t: StatementThresholds
) -> list[Finding]:
    out = []
    for r in rows:
        share = r["total_ms"] / grand_ms if grand_ms else 0.0
        evidence = {
            "queryid": r["queryid"],
            "calls": r["calls"],
            "rows": r["rows"],
            "mean_ms": round(r["mean_ms"], 3),
            "total_ms": round(r["total_ms"], 1),
            "share_of_total_time": round(share, 4),
        }
        if r.get("io_read_ms") is not None:  # track_io_timing: zero unless it is on
            evidence["io_read_ms"] = round(r["io_read_ms"], 1)
            evidence["io_write_ms"] = round(r["io_write_ms"] or 0.0, 1)
        action = f"EXPLAIN (ANALYZE, BUFFERS) {r['query']}"
        if t.slow_ms and r["mean_ms"] >= t.slow_ms:
            out.append(
                Finding(
                    Severity.WARNING,
                    "slow_statement",
                    f"queryid {r['queryid']}",
                    f"mean {r['mean_ms']:,.1f} ms over {r['calls']} calls (slow above "
                    f"{t.slow_ms:g} ms): {r['query'][:120]}",
                    evidence,
                    action,
                )
            )
        elif share >= t.top_share and r["calls"] >= t.min_calls:
            out.append(
                Finding(
                    Severity.INFO,
                    "frequent_statement",
                    f"queryid {r['queryid']}",
                    f"{share:.0%} of all statement time in {r['calls']} calls: {r['query'][:120]}",
                    evidence,
                    action,
                )
            )
    return out
