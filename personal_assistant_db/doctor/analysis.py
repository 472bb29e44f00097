"""``analyze()``: the doctor's analyses on one connection, as a Report of findings.

Each analysis runs in its own savepoint. A query the server refuses (permission denied, a view
missing) becomes an ERROR finding "could not read X: <reason>" and the other analyses go on;
nothing is swallowed into an empty section. Version differences are read from the catalogs
themselves (catalog.py); a view or column a version lacks becomes an INFO finding saying so, and a
server older than 14 gets a WARNING naming what may not work. The analysis only reads: it never
commits, and it never creates an engine; the host passes a connection and, if it has one, a live
``PoolStats``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import AnalysisError
from ..pool import PoolStats
from ..server_version import version_warning
from .catalog import Catalog, not_provided, read_catalog
from .disconnects import disconnect_check_finding
from .findings import Finding, Report, Severity
from .fks import fk_covering, fk_findings, read_foreign_keys
from .indexes import (
    Index,
    invalid_findings,
    read_indexes,
    redundant_findings,
    unused_findings,
)
from .owned import OwnedIndex, owned_index_names, read_owned_schemas
from .pool_advice import PGBOUNCER_MAX_CLIENT_CONN, PoolInputs, pool_advice, pooler_advice
from .sections import Sections, reason
from .server import (
    checkpoint_findings,
    connection_findings,
    memory_findings,
    read_checkpoints,
    read_connections,
    read_settings,
)
from .statements import (
    StatementThresholds,
    read_extension,
    read_statements,
    statement_findings,
    statements_missing,
    statements_state,
)
from .tables import (
    TableThresholds,
    database_findings,
    hit_ratio,
    read_database,
    read_tables,
    table_findings,
)
from .writes import read_backend_writes, writes_findings

__all__ = ["MIN_STATS_DAYS", "analyze"]

MIN_STATS_DAYS = 7.0


async def analyze(
    conn: AsyncConnection,
    *,
    schema: str | None = None,
    pool: PoolStats | None = None,
    application_name: str | None = None,
    workers: int = 1,
    pool_size: int = 10,
    max_overflow: int = 10,
    server_cores: int | None = None,
    machine_memory: int | None = None,
    since_reset: bool = False,
    slow_ms: float = 500.0,
    tables: TableThresholds | None = None,
    pooler: str = "none",
    pooler_max_client_conn: int = PGBOUNCER_MAX_CLIENT_CONN,
    pooler_pool_size: int | None = None,
    replicas: int = 0,
) -> Report:
    """Run every analysis on ``conn`` (a SQLAlchemy AsyncConnection, not in AUTOCOMMIT).

    ``since_reset`` judges unused indexes even when the statistics cover less than
    ``MIN_STATS_DAYS`` days (otherwise they are INFO). ``pool`` (``db.pool_stats()``) turns the
    pool-sizing formula into advice corrected by observed waits and timeouts. ``pooler``
    (``DB_POOLER``) and PgBouncer's ``max_client_conn``/pool size add the pooler's limits.
    """
    if workers < 1:
        raise ValueError(f"workers: expected a whole number >= 1, got {workers!r}")
    t = tables or TableThresholds()
    st = StatementThresholds(slow_ms=slow_ms)
    try:
        head = (
            (
                await conn.execute(
                    text(
                        "SELECT current_setting('server_version_num')::int AS num, "
                        "current_setting('server_version') AS version, "
                        "current_database() AS database"
                    )
                )
            )
            .mappings()
            .one()
        )
    except exc.DBAPIError as error:
        raise AnalysisError(f"could not read the server version: {reason(error)[0]}") from error
    version = int(head["num"])
    pg = str(head["version"]).split()[0]
    s = Sections(conn)
    old = version_warning(version, pg)
    if old is not None:
        s.findings.append(
            Finding(
                Severity.WARNING,
                "version",
                f"PostgreSQL {pg}",
                old,
                {"server_version_num": version},
                "upgrade to PostgreSQL 14 or newer",
            )
        )
    facts: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "server_version": head["version"],
        "server_version_num": version,
        "database": head["database"],
        "schema": schema,
        "since_reset": since_reset,
    }
    settings = await s.run("pg_settings", lambda: read_settings(conn))
    db = await s.run("pg_stat_database", lambda: read_database(conn))
    window_s: float | None = None
    if db is not None:
        window_s = db["stats_window_s"]
        facts.update(
            stats_reset=db["stats_reset"].isoformat() if db["stats_reset"] else None,
            stats_window_days=round(window_s / 86400, 2) if window_s is not None else None,
            cache_hit_ratio=_rounded(hit_ratio(db["blks_hit"], db["blks_read"])),
            temp_files=db["temp_files"],
            temp_bytes=db["temp_bytes"],
            xid_age=db["xid_age"],
        )
        s.findings += database_findings(db, t)
    judge = since_reset or (window_s is not None and window_s >= MIN_STATS_DAYS * 86400)

    indexes = await s.run("pg_index/pg_stat_user_indexes", lambda: read_indexes(conn, schema))
    fks = await s.run("pg_constraint (foreign keys)", lambda: read_foreign_keys(conn, schema))
    ours = await s.run("_yoyo_migration (the package's schemas)", lambda: read_owned_schemas(conn))
    facts["migrated_schemas"] = sorted(ours or ())
    if indexes is not None and fks is not None:
        names = owned_index_names()
        owned = {
            ix.label: names[ix.name]
            for ix in indexes
            if ix.schema in (ours or ()) and ix.name in names
        }
        s.findings += _index_findings(
            indexes, fks, window_s=window_s, judge_unused=judge, owned=owned
        )
    rows = await s.run("pg_stat_user_tables", lambda: read_tables(conn, schema))
    if rows is not None:
        s.findings += table_findings(rows, t)

    conns = await s.run("pg_stat_activity", lambda: read_connections(conn, application_name))
    if settings is not None:
        max_conn = int(settings["max_connections"]["setting"])
        reserved = int(settings["superuser_reserved_connections"]["setting"])
        facts.update(max_connections=max_conn, superuser_reserved_connections=reserved)
        ext = await s.run("pg_extension", lambda: read_extension(conn))
        state = statements_state(settings, ext)
        facts["pg_stat_statements"] = state
        if ext:
            facts["pg_stat_statements_version"] = ext
        shape = await s.run(
            "statistics catalogs", lambda: read_catalog(conn, statements=state == "ready")
        )
        catalog = shape or Catalog()
        facts["catalog"] = catalog.as_dict()
        if state != "ready":
            s.findings.append(statements_missing(state))
        elif shape is not None:
            got = await s.run("pg_stat_statements", lambda: read_statements(conn, catalog, st))
            if got is not None:
                s.findings += statement_findings(got[0], got[1], st)
            elif "pg_stat_statements" not in s.failed:
                s.findings.append(not_provided("statements", pg, "pg_stat_statements time columns"))
        if db is not None:
            s.findings += memory_findings(settings, machine_memory, db)
        if (vanished := disconnect_check_finding(settings, version)) is not None:
            s.findings.append(vanished)
        s.findings += await _counters(s, conn, catalog, settings, pg, known=shape is not None)
        if conns is not None:
            ours = sum(r["ours"] for r in conns)
            total = sum(r["n"] for r in conns)
            facts.update(
                connections_by_state={r["state"]: r["n"] for r in conns},
                application_name=application_name,
                application_connections=ours if application_name else None,
            )
            s.findings += connection_findings(conns, max_conn, reserved)
            cores = server_cores or os.cpu_count() or 1
            inputs = PoolInputs(
                max_connections=max_conn,
                reserved=reserved,
                others=total - ours if application_name else total,
                workers=workers,
                cores=cores,
                cores_known=server_cores is not None,
                configured_size=pool_size,
                configured_overflow=max_overflow,
                stats=pool,
                pooler=pooler,
                pooler_max_client_conn=pooler_max_client_conn,
                pooler_pool_size=pooler_pool_size,
                replicas=replicas,
            )
            s.findings.append(pool_advice(inputs))
            behind = pooler_advice(inputs)
            if behind is not None:
                s.findings.append(behind)
    facts["unreadable"] = s.failed
    ordered = sorted(s.findings, key=lambda f: (-f.severity, f.analysis, f.object))
    return Report(findings=tuple(ordered), facts=facts)


async def _counters(
    s: Sections,
    conn: AsyncConnection,
    catalog: Catalog,
    settings: dict[str, dict[str, Any]],
    pg: str,
    *,
    known: bool,
) -> list[Finding]:
    """Checkpoint and backend-write findings from whichever views this version has."""
    out: list[Finding] = []
    view = catalog.checkpoints
    if view is not None:
        cp = await s.run("checkpoint statistics", lambda: read_checkpoints(conn, view))
        if cp is not None:
            out += checkpoint_findings(cp, settings["max_wal_size"])
    elif known:
        out.append(
            not_provided("checkpoints", pg, "pg_stat_checkpointer or pg_stat_bgwriter's counts")
        )
    writes = catalog.backend_writes
    if writes is not None:
        row = await s.run(writes, lambda: read_backend_writes(conn, writes))
        if row is not None:
            out += writes_findings(row)
    elif known:
        out.append(
            not_provided("backend_writes", pg, "pg_stat_io or pg_stat_bgwriter.buffers_backend")
        )
    return out


def _index_findings(
    indexes: Sequence[Index],
    fks: Sequence[dict[str, Any]],
    *,
    window_s: float | None,
    judge_unused: bool,
    owned: Mapping[str, OwnedIndex],
) -> list[Finding]:
    """Redundant first: what they drop neither counts as covering an FK nor is reported unused.
    ``owned`` (label -> the migration that made it) is never advised for dropping."""
    redundant, dropped = redundant_findings(indexes, owned)
    live = [ix for ix in indexes if ix.label not in dropped]
    return [
        *redundant,
        *invalid_findings(indexes),
        *unused_findings(
            indexes,
            dropped | fk_covering(fks, live),
            window_s=window_s,
            judge=judge_unused,
            owned=owned,
        ),
        *fk_findings(fks, indexes),
    ]


def _rounded(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio, 4)
