"""The doctor on every version's catalog shape: pg_stat_statements 1.9-1.12, checkpoint counts in
pg_stat_checkpointer (17+) or pg_stat_bgwriter, backend writes in pg_stat_io (16+) or
pg_stat_bgwriter. The shapes are views with exactly each version's column names, made in a
scratch schema that comes first on the search_path (a view the version lacks is one without its
columns, hiding the newer server's own), and the doctor's own readers run on them
against real PostgreSQL; the last test runs the whole doctor on this run's server version."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from doctor_helpers import doctor
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from personal_assistant_db import Database
from personal_assistant_db.doctor.catalog import (
    Catalog,
    read_catalog,
    statement_columns_sql,
)
from personal_assistant_db.doctor.server import read_checkpoints
from personal_assistant_db.doctor.statements import (
    StatementThresholds,
    read_statements,
    statement_findings,
)
from personal_assistant_db.doctor.writes import read_backend_writes, writes_findings
from personal_assistant_db.server_version import version_warning
from personal_assistant_db.urls import parse_database_url, to_async

_COMMON = ("userid", "dbid", "queryid", "query", "calls", "rows", "shared_blks_read")
# pg_stat_statements' time columns by extension version (the rest of each view is left out:
# the doctor reads only these). 1.9 = PG 14, 1.10 = PG 15/16, 1.11 = PG 17, 1.12 = PG 18.
STATEMENTS = {
    "1.9": (*_COMMON, "total_exec_time", "mean_exec_time", "blk_read_time", "blk_write_time"),
    "1.10": (
        *_COMMON,
        "total_exec_time",
        "mean_exec_time",
        "blk_read_time",
        "blk_write_time",
        "temp_blk_read_time",
    ),
    "1.11": (
        *_COMMON,
        "total_exec_time",
        "mean_exec_time",
        "shared_blk_read_time",
        "shared_blk_write_time",
        "local_blk_read_time",
        "stats_since",
    ),
    "1.12": (
        *_COMMON,
        "total_exec_time",
        "mean_exec_time",
        "shared_blk_read_time",
        "shared_blk_write_time",
        "local_blk_read_time",
        "stats_since",
        "wal_buffers_full",
    ),
}
BGWRITER_16 = ("checkpoints_timed", "checkpoints_req", "buffers_checkpoint", "buffers_clean",
               "buffers_backend")  # fmt: skip
BGWRITER_17 = ("buffers_clean", "maxwritten_clean", "buffers_alloc")
CHECKPOINTER = ("num_timed", "num_requested", "buffers_written")
STAT_IO = ("backend_type", "object", "context", "reads", "writes")

# server version -> (statements, bgwriter, checkpointer, stat_io, expected sources)
VERSIONS = {
    "14": ("1.9", BGWRITER_16, (), (), ("blk_read_time", "pg_stat_bgwriter", "pg_stat_bgwriter")),
    "15": ("1.10", BGWRITER_16, (), (), ("blk_read_time", "pg_stat_bgwriter", "pg_stat_bgwriter")),
    "16": ("1.10", BGWRITER_16, (), STAT_IO, ("blk_read_time", "pg_stat_bgwriter", "pg_stat_io")),
    "17": ("1.11", BGWRITER_17, CHECKPOINTER, STAT_IO,
           ("shared_blk_read_time", "pg_stat_checkpointer", "pg_stat_io")),
    "18": ("1.12", BGWRITER_17, CHECKPOINTER, STAT_IO,
           ("shared_blk_read_time", "pg_stat_checkpointer", "pg_stat_io")),
}  # fmt: skip

_VALUES = {
    "userid": "10::oid",
    "dbid": "(SELECT oid FROM pg_database WHERE datname = current_database())",
    "queryid": "42::bigint",
    "query": "'SELECT * FROM orders WHERE total > $1'::text",
    "calls": "200::bigint",
    "rows": "9::bigint",
    "total_exec_time": "150000.0::float8",
    "mean_exec_time": "750.0::float8",
    "blk_read_time": "12.5::float8",
    "shared_blk_read_time": "12.5::float8",
    "blk_write_time": "2.0::float8",
    "shared_blk_write_time": "2.0::float8",
    "checkpoints_timed": "3::bigint",
    "num_timed": "3::bigint",
    "checkpoints_req": "40::bigint",
    "num_requested": "40::bigint",
    "buffers_backend": "90000::bigint",
    "buffers_checkpoint": "5000::bigint",
    "buffers_clean": "1000::bigint",
    "backend_type": "'client backend'::text",
    "object": "'relation'::text",
    "context": "'normal'::text",
    "writes": "90000::bigint",
    "stats_since": "now()",
}


def _view(name: str, columns: tuple[str, ...]) -> str:
    select = ", ".join(f"{_VALUES.get(c, '0::bigint')} AS {c}" for c in columns)
    return f"CREATE VIEW shape.{name} AS SELECT {select}"


def _make_shape(url: str, version: str) -> None:
    statements, bgwriter, checkpointer, stat_io, _ = VERSIONS[version]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shape")
        conn.execute(_view("pg_stat_statements", STATEMENTS[statements]).encode())
        conn.execute(_view("pg_stat_bgwriter", bgwriter).encode())
        for name, columns in (("pg_stat_checkpointer", checkpointer), ("pg_stat_io", stat_io)):
            if columns:
                conn.execute(_view(name, columns).encode())
            else:  # the version has no such view; on a server that has it, hide its columns
                conn.execute(f"CREATE VIEW shape.{name} AS SELECT 1 AS absent".encode())
        # pg_catalog is searched first unless the path names it later: shape's views win
        [name] = conn.execute(b"SELECT current_database()").fetchone() or ("",)
        conn.execute(
            f'ALTER DATABASE "{name}" SET search_path = shape, pg_catalog, public'.encode()
        )


@pytest.mark.parametrize("version", sorted(VERSIONS, key=int))
async def test_the_doctors_readers_on_each_versions_catalog_shape(
    version: str, make_database: Callable[[], str]
) -> None:
    url = make_database()
    _make_shape(url, version)
    io_column, checkpoints, writes = VERSIONS[version][4]
    engine = create_async_engine(to_async(parse_database_url(url)))
    try:
        async with engine.connect() as conn:
            catalog = await read_catalog(conn, statements=True)
            assert catalog.as_dict() == {
                "statement_time": "total_exec_time",
                "statement_io_time": io_column,
                "checkpoints": checkpoints,
                "backend_writes": writes,
            }
            t = StatementThresholds()
            got = await read_statements(conn, catalog, t)
            assert got is not None
            [slow] = statement_findings(*got, t)
            assert slow.analysis == "slow_statement"
            assert slow.evidence["io_read_ms"] == 12.5 and slow.evidence["mean_ms"] == 750.0
            assert checkpoints is not None and writes is not None
            cp = await read_checkpoints(conn, checkpoints)
            assert (cp["timed"], cp["requested"]) == (3, 40)
            row = await read_backend_writes(conn, writes)
            [finding] = writes_findings(row)
            assert finding.evidence["source"] == writes
            assert finding.evidence["backend"] == 90000
    finally:
        await engine.dispose()


_ALWAYS = frozenset(_COMMON)  # in every pg_stat_statements since 1.0
_KNOWN = sorted(
    {c for cols in STATEMENTS.values() for c in cols} - _ALWAYS | {"total_time", "mean_time"}
)


@given(st.frozensets(st.sampled_from(_KNOWN)))
def test_any_statement_column_set_gives_a_query_or_none(drawn: frozenset[str]) -> None:
    """A column set the doctor does not know (old, future, or cut down by a view) never makes
    it name a column that is not there."""
    columns = drawn | _ALWAYS
    sql = statement_columns_sql(Catalog(statements=columns))
    total, _ = Catalog(statements=columns).statement_time()
    if total is None:
        assert sql is None
        return
    assert sql is not None
    named = {part.split("::")[0].removeprefix("s.") for part in sql.split(", ")}
    assert {c for c in named if c in _KNOWN} <= columns
    if not ({"blk_read_time", "blk_write_time"} <= columns) and not (
        {"shared_blk_read_time", "shared_blk_write_time"} <= columns
    ):
        assert "NULL AS io_read_ms" in sql


def test_older_than_14_is_named_with_what_may_not_work() -> None:
    warning = version_warning(130012, "13.12")
    assert warning is not None
    assert "PostgreSQL 13.12 is older than 14" in warning and "doctor" in warning
    assert version_warning(140001, "14.1") is None
    assert version_warning(180006, "18.6") is None


async def test_the_whole_doctor_on_this_servers_version(db: Database) -> None:
    async with db.connect() as conn:
        num = int((await conn.exec_driver_sql("SHOW server_version_num")).scalar_one())
    report = await doctor(db)
    catalog = report.facts["catalog"]
    assert catalog["checkpoints"] == (
        "pg_stat_checkpointer" if num >= 170000 else "pg_stat_bgwriter"
    )
    assert catalog["backend_writes"] == ("pg_stat_io" if num >= 160000 else "pg_stat_bgwriter")
    assert not report.of("unreadable"), report.of("unreadable")
    assert not report.of("version")  # 14 and newer: everything provided, no age warning
