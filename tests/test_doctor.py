"""Index analyses on real PostgreSQL: each problem is created and found; clean ones are not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from doctor_helpers import analyses, doctor, force_flush, run_sql, wait_for_scans
from sqlalchemy import text

from personal_assistant_db import Severity
from personal_assistant_db.migrate import apply, verify
from personal_assistant_db.testing import started_database as started

INDEX_PROBLEMS = {"duplicate_index", "redundant_index", "unindexed_foreign_key"}


async def test_duplicate_index_is_found_with_exact_drop_sql(
    make_database: Callable[[], str],
) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            'CREATE TABLE "Orders" (id int PRIMARY KEY, "Customer" int)',
            'CREATE INDEX "by customer" ON "Orders" ("Customer")',
            'CREATE INDEX "by customer again" ON "Orders" ("Customer")',
        )
        report = await doctor(db)
    [dup] = report.of("duplicate_index")
    assert dup.severity is Severity.WARNING
    assert dup.object == "public.Orders.by customer again"
    assert dup.evidence["kept_index"] == "by customer"
    assert dup.evidence["size_bytes"] == 8192
    assert dup.action == 'DROP INDEX CONCURRENTLY "public"."by customer again";'
    # the action really is valid SQL that removes exactly the duplicate
    async with started(db.settings.url.render_as_string(hide_password=False)) as again:
        await run_sql(again, dup.action.replace(" CONCURRENTLY", ""))
        assert not (await doctor(again)).of("duplicate_index")


async def test_index_duplicating_a_unique_constraint(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE users (id int PRIMARY KEY, email text CONSTRAINT users_email_key UNIQUE)",
            "CREATE INDEX users_email_idx ON users (email)",
            "CREATE UNIQUE INDEX users_id_idx ON users (id)",
        )
        report = await doctor(db)
    found = {f.object: f for f in report.of("duplicate_index")}
    assert set(found) == {"public.users.users_email_idx", "public.users.users_id_idx"}
    assert "constraint 'users_email_key'" in found["public.users.users_email_idx"].summary
    assert "constraint 'users_pkey'" in found["public.users.users_id_idx"].summary
    # never proposes dropping the constraint itself
    assert all("DROP CONSTRAINT" not in f.action for f in report.findings)


async def test_prefix_index_is_redundant(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE events (id int PRIMARY KEY, account int, at timestamptz, kind text)",
            "CREATE INDEX events_account ON events (account)",
            "CREATE INDEX events_account_at ON events (account, at)",
        )
        report = await doctor(db)
    [red] = report.of("redundant_index")
    assert red.object == "public.events.events_account"
    assert red.evidence["kept_index"] == "events_account_at"
    assert red.action == 'DROP INDEX CONCURRENTLY "public"."events_account";'


async def test_indexes_that_serve_different_lookups_are_not_redundant(
    make_database: Callable[[], str],
) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c text)",
            "CREATE INDEX t_b ON t (b)",  # not a prefix of (a, b)
            "CREATE INDEX t_a_b ON t (a, b)",
            "CREATE INDEX t_a_desc ON t (a DESC, c)",  # different sort order
            "CREATE INDEX t_lower ON t (lower(c))",  # expression
            "CREATE INDEX t_c_partial ON t (c) WHERE a > 0",  # partial
            "CREATE INDEX t_c ON t (c)",
            "CREATE UNIQUE INDEX t_a_unique ON t (a)",  # enforces, never redundant
        )
        report = await doctor(db, since_reset=True)
    assert not report.of("duplicate_index") and not report.of("redundant_index")
    # never-scanned plain indexes are unused; unique ones and the PK are not
    unused = {f.object for f in report.of("unused_index")}
    assert "public.t.t_b" in unused
    assert "public.t.t_a_unique" not in unused and "public.t.t_pkey" not in unused
    assert {f.severity for f in report.of("unused_index")} == {Severity.WARNING}


async def test_unused_index_waits_for_enough_statistics(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(db, "CREATE TABLE t (id int, v int)", "CREATE INDEX t_v ON t (v)")
        report = await doctor(db)
    [unused] = report.of("unused_index")
    window = report.facts["stats_window_days"]
    if window < 7:
        assert unused.severity is Severity.INFO and "--since-reset" in unused.summary
    else:
        assert unused.severity is Severity.WARNING


async def test_used_index_is_not_unused(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE t (id int, v int)",
            "INSERT INTO t SELECT g, g FROM generate_series(1, 5000) g",
            "CREATE INDEX t_v ON t (v)",
            "ANALYZE t",
        )
        async with db.connect() as conn:
            await conn.execute(text("SELECT * FROM t WHERE v = 42"))
            await force_flush(conn)
            await conn.commit()
        await wait_for_scans(db, "t", 1)
        report = await doctor(db, since_reset=True)
    assert ("unused_index", "public.t.t_v") not in analyses(report)


async def test_foreign_key_without_index(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE account (id int PRIMARY KEY)",
            'CREATE TABLE "Note" (id int PRIMARY KEY, "Account Id" int REFERENCES account)',
        )
        report = await doctor(db)
        [fk] = report.of("unindexed_foreign_key")
        assert fk.object == "public.Note.Note_Account Id_fkey"
        assert fk.action == (
            'CREATE INDEX CONCURRENTLY "Note_Account Id_idx" ON "public"."Note" ("Account Id");'
        )
        await run_sql(db, fk.action.replace(" CONCURRENTLY", ""))
        after = await doctor(db, since_reset=True)
    assert not after.of("unindexed_foreign_key")
    # never scanned, but it is what keeps the FK indexed: not advised as unused
    assert not after.of("unused_index")


async def test_foreign_key_covered_by_a_composite_index_in_any_order(
    make_database: Callable[[], str],
) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE TABLE p (a int, b int, PRIMARY KEY (a, b))",
            "CREATE TABLE c (id int PRIMARY KEY, x int, y int, z int,"
            " FOREIGN KEY (x, y) REFERENCES p (a, b))",
            "CREATE INDEX c_y_x_z ON c (y, x, z)",
        )
        report = await doctor(db)
    assert not report.of("unindexed_foreign_key")


async def test_schema_filter(make_database: Callable[[], str]) -> None:
    async with started(make_database()) as db:
        await run_sql(
            db,
            "CREATE SCHEMA other",
            "CREATE TABLE other.t (v int)",
            "CREATE INDEX a ON other.t (v)",
            "CREATE INDEX b ON other.t (v)",
        )
        assert (await doctor(db, schema="other")).of("duplicate_index")
        assert not (await doctor(db, schema="public")).of("duplicate_index")


async def test_our_rbac_schema_at_head_is_clean(make_database: Callable[[], str]) -> None:
    url = make_database()
    assert apply(url)
    async with started(url) as db:
        report = await doctor(db)
    assert report.facts["unreadable"] == []
    problems = [f for f in report.findings if f.analysis in INDEX_PROBLEMS]
    assert problems == []
    # it did look: the RBAC tables have foreign keys and indexes
    assert report.facts["database"] == db.settings.url.database


@pytest.mark.parametrize("schema", [None, "auth"])
async def test_indexes_the_migrations_own_are_never_advised_dropped(
    make_database: Callable[[], str], schema: str | None
) -> None:
    """On a young database the audit time indexes are unused; the doctor explains them instead of
    advising DROP, and after doing everything it does advise, verify still passes."""
    url = make_database()
    if schema:
        async with started(url) as admin:
            await run_sql(admin, f"CREATE SCHEMA {schema}")
    target = f"{url}{'&' if '?' in url else '?'}schema={schema}" if schema else url
    assert apply(target)
    where = schema or "public"
    async with started(url) as db:
        await run_sql(  # a host's own index duplicating one of ours: that one may go
            db, f"CREATE INDEX host_copy ON {where}.security_events (occurred_at)"
        )
        report = await doctor(db, since_reset=True)  # judge unused indexes however young
        owned = {f.object: f for f in report.of("unused_owned_index")}
        ours = f"{where}.security_events.security_events_occurred_at_idx"
        audit = f"{where}.access_audit_logs.access_audit_logs_occurred_at_idx"
        assert ours in owned and audit in owned
        assert owned[ours].severity is Severity.INFO and owned[ours].action == ""
        assert "migration 0007_audit_time_indexes (Time-range indexes for the audit tables" in (
            owned[ours].summary
        )
        assert report.facts["migrated_schemas"] == [where]
        [dup] = report.of("duplicate_index")
        assert dup.object == f"{where}.security_events.host_copy"
        drops = [f.action for f in report.findings if "DROP" in f.action]
        assert all("occurred_at_idx" not in a and "_pkey" not in a for a in drops)
        for action in drops:  # do all the doctor advises
            await run_sql(db, action.replace(" CONCURRENTLY", ""))
    assert verify(target).ok, verify(target).problems
