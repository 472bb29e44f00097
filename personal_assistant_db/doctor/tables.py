"""Table analyses: sequential scans, cache hit ratios, dead tuples and vacuum/analyze age.

Ages are computed by the server (``now() - last_autovacuum``), so they do not depend on the
client's clock or time zone; the timestamps themselves come back timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._sql import qualified
from .findings import Finding, Severity
from .indexes import SCHEMA_FILTER

__all__ = [
    "TableThresholds",
    "database_findings",
    "hit_ratio",
    "read_database",
    "read_tables",
    "table_findings",
]

_TABLES = text(f"""
SELECT s.schemaname AS schema, s.relname AS table, s.seq_scan, s.seq_tup_read,
       COALESCE(s.idx_scan, 0) AS idx_scan, s.n_live_tup, s.n_dead_tup,
       s.n_mod_since_analyze, pg_table_size(s.relid) AS size,
       GREATEST(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
       GREATEST(s.last_analyze, s.last_autoanalyze) AS last_analyze,
       EXTRACT(EPOCH FROM now() - GREATEST(s.last_vacuum, s.last_autovacuum))::float8
           AS vacuum_age_s,
       EXTRACT(EPOCH FROM now() - GREATEST(s.last_analyze, s.last_autoanalyze))::float8
           AS analyze_age_s,
       io.heap_blks_hit, io.heap_blks_read, io.idx_blks_hit, io.idx_blks_read
FROM pg_stat_user_tables s
JOIN pg_namespace n ON n.nspname = s.schemaname
LEFT JOIN pg_statio_user_tables io ON io.relid = s.relid
WHERE {SCHEMA_FILTER}
ORDER BY s.schemaname, s.relname
""")

_DATABASE = text("""
SELECT d.datname, d.blks_hit, d.blks_read, d.temp_files, d.temp_bytes, d.stats_reset,
       EXTRACT(EPOCH FROM now() - COALESCE(d.stats_reset, pg_postmaster_start_time()))::float8
           AS stats_window_s,
       age(db.datfrozenxid) AS xid_age,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age
FROM pg_stat_database d JOIN pg_database db ON db.oid = d.datid
WHERE d.datname = current_database()
""")


@dataclass(frozen=True)
class TableThresholds:
    min_seq_scans: int = 500
    min_rows_per_scan: int = 1_000
    min_blocks_for_ratio: int = 1_000
    hit_ratio: float = 0.99
    dead_ratio: float = 0.2
    min_dead_tuples: int = 1_000
    stale_days: float = 7.0


def hit_ratio(hit: int | None, read: int | None) -> float | None:
    """Share of block reads served from shared buffers; None when there were none."""
    total = (hit or 0) + (read or 0)
    return (hit or 0) / total if total else None


async def read_tables(conn: AsyncConnection, schema: str | None) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(_TABLES, {"schema": schema})).mappings()]


async def read_database(conn: AsyncConnection) -> dict[str, Any]:
    return dict((await conn.execute(_DATABASE)).mappings().one())


def table_findings(rows: list[dict[str, Any]], t: TableThresholds) -> list[Finding]:
    out: list[Finding] = []
    for r in rows:
        name = f"{r['schema']}.{r['table']}"
        ref = qualified(r["schema"], r["table"])
        seq, idx = r["seq_scan"] or 0, r["idx_scan"] or 0
        per_scan = (r["seq_tup_read"] or 0) / seq if seq else 0.0
        if seq >= t.min_seq_scans and seq > idx and per_scan >= t.min_rows_per_scan:
            out.append(
                Finding(
                    Severity.WARNING,
                    "sequential_scans",
                    name,
                    f"read by {seq} sequential scans ({per_scan:,.0f} rows each) "
                    f"against {idx} index scans",
                    {
                        "seq_scan": seq,
                        "idx_scan": idx,
                        "rows_per_seq_scan": round(per_scan, 1),
                        "live_rows": r["n_live_tup"],
                        "size_bytes": r["size"],
                    },
                    "find the statements: SELECT query, calls FROM pg_stat_statements WHERE query "
                    f"ILIKE '%{r['table']}%' ORDER BY total_exec_time DESC; then index the columns "
                    f"they filter on: CREATE INDEX CONCURRENTLY ON {ref} (<column>);",
                )
            )
        for part, hit, read in (
            ("heap", r["heap_blks_hit"], r["heap_blks_read"]),
            ("index", r["idx_blks_hit"], r["idx_blks_read"]),
        ):
            ratio = hit_ratio(hit, read)
            if ratio is None or (hit or 0) + (read or 0) < t.min_blocks_for_ratio:
                continue
            if ratio < t.hit_ratio:
                out.append(
                    Finding(
                        Severity.INFO,
                        "cache_hit_ratio",
                        name,
                        f"{part} cache hit ratio {ratio:.1%} (below {t.hit_ratio:.0%})",
                        {
                            "part": part,
                            "hit_ratio": round(ratio, 4),
                            "blks_hit": hit,
                            "blks_read": read,
                        },
                        "the working set does not fit in shared_buffers: see the memory findings "
                        "(shared_buffers), or reduce what is read (indexes, narrower queries)",
                    )
                )
        live, dead = r["n_live_tup"] or 0, r["n_dead_tup"] or 0
        dead_ratio = dead / (live + dead) if live + dead else 0.0
        if dead >= t.min_dead_tuples and dead_ratio >= t.dead_ratio:
            out.append(
                Finding(
                    Severity.WARNING,
                    "dead_tuples",
                    name,
                    f"{dead_ratio:.0%} of rows are dead ({dead} dead, {live} live)",
                    {
                        "n_dead_tup": dead,
                        "n_live_tup": live,
                        "dead_ratio": round(dead_ratio, 4),
                        "last_vacuum": _iso(r["last_vacuum"]),
                        "vacuum_age_days": _days(r["vacuum_age_s"]),
                    },
                    f"VACUUM (ANALYZE) {ref}; and if it recurs: ALTER TABLE {ref} SET "
                    "(autovacuum_vacuum_scale_factor = 0.05);",
                )
            )
        stale = r["analyze_age_s"] is None or r["analyze_age_s"] > t.stale_days * 86400
        if (r["n_mod_since_analyze"] or 0) >= t.min_dead_tuples and stale:
            out.append(
                Finding(
                    Severity.INFO,
                    "stale_statistics",
                    name,
                    f"{r['n_mod_since_analyze']} rows changed and the table was "
                    + (
                        "never analyzed"
                        if r["analyze_age_s"] is None
                        else f"last analyzed {_days(r['analyze_age_s'])} days ago"
                    ),
                    {
                        "n_mod_since_analyze": r["n_mod_since_analyze"],
                        "last_analyze": _iso(r["last_analyze"]),
                        "analyze_age_days": _days(r["analyze_age_s"]),
                    },
                    f"ANALYZE {ref};",
                )
            )
    return out


def database_findings(db: dict[str, Any], t: TableThresholds) -> list[Finding]:
    out: list[Finding] = []
    ratio = hit_ratio(db["blks_hit"], db["blks_read"])
    blocks = (db["blks_hit"] or 0) + (db["blks_read"] or 0)
    if ratio is not None and blocks >= t.min_blocks_for_ratio and ratio < 0.95:
        out.append(
            Finding(
                Severity.WARNING,
                "cache_hit_ratio",
                db["datname"],
                f"database cache hit ratio {ratio:.1%} (below 95%)",
                {
                    "hit_ratio": round(ratio, 4),
                    "blks_hit": db["blks_hit"],
                    "blks_read": db["blks_read"],
                },
                "raise shared_buffers (see the memory findings) or reduce what is read",
            )
        )
    xid_age, limit = int(db["xid_age"]), int(db["freeze_max_age"])
    if xid_age > 2 * limit:
        out.append(
            Finding(
                Severity.ERROR if xid_age > 1_000_000_000 else Severity.WARNING,
                "transaction_id_age",
                db["datname"],
                f"oldest unfrozen transaction ID is {xid_age:,} transactions old "
                f"(autovacuum_freeze_max_age {limit:,}); wraparound stops writes at ~2 billion",
                {"xid_age": xid_age, "autovacuum_freeze_max_age": limit},
                "VACUUM (FREEZE, VERBOSE); on the oldest tables, and look for long-running "
                "transactions or abandoned replication slots holding back the horizon",
            )
        )
    return out


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 2)
