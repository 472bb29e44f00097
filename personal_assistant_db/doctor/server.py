"""Server-wide analyses: connections, memory settings, temp-file spills and
checkpoints. Version differences are read from the catalogs (catalog.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .findings import Finding, Severity

__all__ = [
    "checkpoint_findings",
    "connection_findings",
    "memory_findings",
    "read_checkpoints",
    "read_connections",
    "read_settings",
]

_SETTINGS = text("""
SELECT name, setting, unit,
       CASE unit WHEN '8kB' THEN setting::bigint * 8192 WHEN 'kB' THEN setting::bigint * 1024
                 WHEN 'MB' THEN setting::bigint * 1048576 ELSE NULL END AS bytes
FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'shared_buffers',
               'work_mem', 'effective_cache_size', 'maintenance_work_mem',
               'shared_preload_libraries', 'max_wal_size', 'server_version_num',
               'client_connection_check_interval')
""")


_CONNECTIONS = text("""
SELECT COALESCE(state, 'unknown') AS state, count(*) AS n,
       count(*) FILTER (WHERE application_name = CAST(:app AS text)) AS ours,
       count(*) FILTER (WHERE state = 'idle in transaction'
                        AND now() - state_change > interval '60 seconds') AS idle_tx_long
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1 ORDER BY 1
""")

_CHECKPOINTS_17 = text(
    "SELECT num_timed AS timed, num_requested AS requested FROM pg_stat_checkpointer"
)
_CHECKPOINTS_OLD = text(
    "SELECT checkpoints_timed AS timed, checkpoints_req AS requested FROM pg_stat_bgwriter"
)


async def read_settings(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    return {r["name"]: dict(r) for r in (await conn.execute(_SETTINGS)).mappings()}


async def read_connections(conn: AsyncConnection, app: str | None) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(_CONNECTIONS, {"app": app})).mappings()]


def connection_findings(
    rows: list[dict[str, Any]], max_connections: int, reserved: int
) -> list[Finding]:
    out = []
    in_use = sum(r["n"] for r in rows) + 1  # + this session
    usable = max_connections - reserved
    ratio = in_use / usable if usable else 1.0
    if ratio >= 0.8:
        out.append(
            Finding(
                Severity.ERROR if ratio >= 0.95 else Severity.WARNING,
                "connections",
                "server",
                f"{in_use} of {usable} usable connections in use ({ratio:.0%})",
                {
                    "in_use": in_use,
                    "max_connections": max_connections,
                    "superuser_reserved_connections": reserved,
                },
                "put PgBouncer (transaction pooling) in front, lower DB_POOL_SIZE/DB_MAX_OVERFLOW, "
                f"or raise max_connections above {max_connections} (needs a restart)",
            )
        )
    idle_tx = sum(r["idle_tx_long"] for r in rows)
    if idle_tx:
        out.append(
            Finding(
                Severity.WARNING,
                "connections",
                "server",
                f"{idle_tx} sessions idle in transaction for more than 60 s (they hold locks and "
                "block vacuum)",
                {"idle_in_transaction_over_60s": idle_tx},
                "idle_in_transaction_session_timeout = '60s' (ALTER ROLE ... SET, or server-wide)",
            )
        )
    return out


def memory_findings(
    settings: dict[str, dict[str, Any]], machine_bytes: int | None, db: dict[str, Any]
) -> list[Finding]:
    out = []
    mb = 1024 * 1024
    sb = int(settings["shared_buffers"]["bytes"])
    wm = int(settings["work_mem"]["bytes"])
    ecs = int(settings["effective_cache_size"]["bytes"])
    maxc = int(settings["max_connections"]["setting"])
    if machine_bytes:
        ram = machine_bytes
        common = {"machine_memory_bytes": ram, "shared_buffers_bytes": sb}
        if sb < ram * 0.15 or sb > ram * 0.4:
            target = _mb(ram // 4)
            out.append(
                Finding(
                    Severity.WARNING if sb > ram * 0.4 else Severity.INFO,
                    "memory",
                    "shared_buffers",
                    f"shared_buffers is {sb / ram:.0%} of the machine's memory (25% is the usual "
                    "starting point)",
                    common,
                    f"shared_buffers = '{target}MB' (needs a restart)",
                )
            )
        if ecs < ram * 0.5:
            out.append(
                Finding(
                    Severity.INFO,
                    "memory",
                    "effective_cache_size",
                    f"effective_cache_size is {ecs / ram:.0%} of memory: the planner undervalues "
                    "index scans",
                    {"machine_memory_bytes": ram, "effective_cache_size_bytes": ecs},
                    f"effective_cache_size = '{_mb(ram * 3 // 4)}MB'",
                )
            )
        if wm * maxc > ram:
            out.append(
                Finding(
                    Severity.WARNING,
                    "memory",
                    "work_mem",
                    f"work_mem x max_connections = {_mb(wm * maxc)} MB exceeds the machine's "
                    f"{_mb(ram)} MB: a burst of sorts can run out of memory",
                    {"work_mem_bytes": wm, "max_connections": maxc, "machine_memory_bytes": ram},
                    f"work_mem = '{max(1, _mb((ram - sb) // (maxc * 2)))}MB' or fewer connections",
                )
            )
    else:
        out.append(
            Finding(
                Severity.INFO,
                "memory",
                "machine memory",
                "the database machine's memory is unknown, so memory settings were not judged",
                {
                    "shared_buffers_bytes": sb,
                    "work_mem_bytes": wm,
                    "effective_cache_size_bytes": ecs,
                },
                "pass --machine-memory (e.g. 8GB), or machine_memory= to analyze()",
            )
        )
    files, spilled = int(db["temp_files"] or 0), int(db["temp_bytes"] or 0)
    if files:
        avg = spilled // files
        target = max(_pow2_mb(avg), _mb(wm) * 2)
        out.append(
            Finding(
                Severity.INFO,
                "temp_files",
                db["datname"],
                f"{files} sorts/hashes spilled to disk ({spilled / mb:,.1f} MB, average "
                f"{avg / mb:,.2f} MB) with work_mem {wm // 1024} kB",
                {"temp_files": files, "temp_bytes": spilled, "work_mem_bytes": wm},
                f"work_mem = '{target}MB' for the role that runs them: ALTER ROLE <role> SET "
                f"work_mem = '{target}MB';",
            )
        )
    return out


async def read_checkpoints(conn: AsyncConnection, view: str) -> dict[str, Any]:
    """``view`` is ``Catalog.checkpoints``: PG 17 moved the checkpoint counters from
    pg_stat_bgwriter to pg_stat_checkpointer (and renamed them)."""
    query = _CHECKPOINTS_17 if view == "pg_stat_checkpointer" else _CHECKPOINTS_OLD
    return dict((await conn.execute(query)).mappings().one())


def checkpoint_findings(row: dict[str, Any], max_wal: dict[str, Any]) -> list[Finding]:
    timed, requested = int(row["timed"]), int(row["requested"])
    if requested < 10 or requested <= timed:
        return []
    current = int(max_wal["setting"])  # MB
    return [
        Finding(
            Severity.WARNING,
            "checkpoints",
            "server",
            f"{requested} checkpoints were forced by WAL volume against {timed} on schedule",
            {"requested": requested, "timed": timed, "max_wal_size_mb": current},
            f"max_wal_size = '{current * 2}MB'",
        )
    ]


def _mb(n: int) -> int:
    return n // (1024 * 1024)


def _pow2_mb(n: int) -> int:
    mb = 1
    while mb * 1024 * 1024 < n:
        mb *= 2
    return mb
