"""Migrations proven on real PostgreSQL: stairway, round trip, data-preserving rollbacks, failure
injection, concurrency, locks, the schema option, drift and bad input. Every test gets its own
fresh database (make_database), so it can run beside other engineers' tests on a shared server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import (
    HEAD,
    IDS,
    assert_snapshot,
    expected,
    query,
    row_hashes,
    seed_existing_tables,
    snap,
    tables,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from personal_assistant_db import MigrationError, MigrationLockHeld, Settings, UnknownMigration
from personal_assistant_db.migrate import (
    apply,
    migration_status,
    rollback,
    status,
    unlock,
    verify,
)
from personal_assistant_db.migrate.snapshot import BOOKKEEPING_TABLES, diff
from personal_assistant_db.migrate.target import target_of
from personal_assistant_db.urls import parse_database_url

MakeDb = Callable[[], str]
BIN = Path(sys.executable).parent


def test_stairway_every_migration_rolls_back_exactly(make_database: MakeDb) -> None:
    """For each n: apply n, roll back n (schema equals n-1 again), apply n again (equals n).

    Each snapshot is also compared with the shipped SNAPSHOTS.json, which keeps it current.
    """
    url = make_database()
    before = snap(url)
    assert diff(expected(""), before) == []
    previous = ""
    for mid in IDS:
        assert apply(url, to=mid) == [mid]
        after = snap(url)
        assert diff(expected(mid), after) == [], mid
        assert rollback(url, steps=1) == [mid]
        assert diff(before, snap(url)) == [], f"rolling back {mid} left something behind"
        assert apply(url, to=mid) == [mid]
        assert diff(after, snap(url)) == [], f"re-applying {mid} differs"
        before, previous = after, mid
    assert previous == HEAD


def test_full_round_trip_leaves_only_bookkeeping(make_database: MakeDb) -> None:
    url = make_database()
    assert apply(url) == list(IDS)
    assert_snapshot(url, HEAD)
    assert rollback(url, all=True) == list(reversed(IDS))
    assert_snapshot(url, "")
    assert tables(url) <= BOOKKEEPING_TABLES
    assert query(url, "SELECT count(*) FROM _yoyo_migration") == [(0,)]
    assert query(url, "SELECT count(*) FROM _pa_db_migration_hashes") == [(0,)]
    assert apply(url) == list(IDS)
    assert_snapshot(url, HEAD)
    assert verify(url).ok


def test_rollbacks_preserve_existing_rows(make_database: MakeDb) -> None:
    """At every point of the history, seed rows, then apply and roll back everything later:
    the row hashes of every pre-existing table are unchanged."""
    url = make_database()
    seeded: set[str] = set()
    for k, mid in enumerate(IDS):
        apply(url, to=mid)
        seeded.update(seed_existing_tables(url, skip=frozenset(seeded)))
        hashes = row_hashes(url)
        assert hashes
        if k + 1 < len(IDS):
            apply(url)
            rollback(url, to=mid)
        assert row_hashes(url) == hashes, f"rolling back to {mid} changed existing rows"
    assert verify(url).ok


def test_seed_rollback_keeps_grants_of_other_roles(make_database: MakeDb) -> None:
    url = make_database()
    apply(url, to="0005_audit")
    seed_existing_tables(url)
    apply(url, to="0006_seed_roles")
    roles = {r[0] for r in query(url, "SELECT name FROM roles")}
    assert roles == {"support", "user", "premium", "administrator"}
    counts = dict(
        query(
            url,
            "SELECT r.name, count(*) FROM role_permissions rp JOIN roles r ON r.id = rp.role_id"
            " GROUP BY r.name",
        )
    )
    assert counts == {"support": 1, "user": 6, "premium": 9, "administrator": 13}
    rollback(url, to="0005_audit")
    assert query(url, "SELECT name FROM roles") == [("support",)]
    assert query(url, "SELECT count(*) FROM user_roles") == [(1,)]


def test_failing_last_step_leaves_nothing_applied_or_marked(make_database: MakeDb) -> None:
    """0005's last statement creates access_audit_logs_user_id_idx; a clash makes it fail."""
    url = make_database()
    apply(url, to="0004_rbac")
    query(url, "CREATE INDEX access_audit_logs_user_id_idx ON roles (description)")
    before = snap(url)
    with pytest.raises(MigrationError, match=r"0005_audit.*42P07.*nothing of it was applied$"):
        apply(url)
    assert diff(before, snap(url)) == []
    assert "security_events" not in tables(url)
    report = status(url)
    assert report.applied == IDS[:4]
    assert query(url, "SELECT count(*) FROM _pa_db_migration_hashes") == [(4,)]
    ops = query(url, "SELECT count(*) FROM _yoyo_log WHERE migration_id = '0005_audit'")
    assert ops == [(0,)]


def test_a_failure_mid_run_names_what_the_run_finished(make_database: MakeDb) -> None:
    """Each migration is its own transaction: 0004 stays applied when 0005 fails after it."""
    url = make_database()
    apply(url, to="0003_mfa")
    query(url, "CREATE INDEX access_audit_logs_user_id_idx ON users (display_name)")
    with pytest.raises(MigrationError, match=r"42P07.*\(this run already applied: 0004_rbac\)$"):
        apply(url)
    assert status(url).applied == IDS[:4]
    query(url, "DROP INDEX access_audit_logs_user_id_idx")
    assert_snapshot(url, "0004_rbac")


def test_failing_non_transactional_migration_undoes_its_steps(make_database: MakeDb) -> None:
    """0007 builds two indexes CONCURRENTLY (no transaction); the second fails, the first is
    dropped again by its rollback step, and nothing is marked."""
    url = make_database()
    apply(url, to="0006_seed_roles")
    query(url, "CREATE INDEX access_audit_logs_occurred_at_idx ON roles (name)")
    with pytest.raises(MigrationError, match="not transactional"):
        apply(url)
    names = {r[0] for r in query(url, "SELECT indexname FROM pg_indexes")}
    assert "security_events_occurred_at_idx" not in names
    assert status(url).pending == IDS[IDS.index("0007_audit_time_indexes") :]


def test_two_runners_apply_each_migration_once(make_database: MakeDb) -> None:
    """Two `pa-db migrate apply` processes started together: yoyo's lock serializes them."""
    url = make_database()
    env = {**os.environ, "DATABASE_URL": url, "DB_ENV": "test"}
    argv = [sys.executable, "-m", "personal_assistant_db.cli", "migrate", "apply", "--json"]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    applied = [json.loads(out)["applied"] for out, _ in outs]
    assert sorted(applied, key=len) == [[], list(IDS)]
    counts = query(
        url,
        "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply'"
        " GROUP BY migration_id ORDER BY 1",
    )
    assert counts == [(mid, 1) for mid in IDS]
    assert_snapshot(url, HEAD)


def test_stale_lock_is_explained_and_unlock_clears_it(make_database: MakeDb) -> None:
    url = make_database()
    apply(url, to="0001_auth_core")
    query(
        url,
        "INSERT INTO yoyo_lock (locked, ctime, pid)"
        " VALUES (1, (now() AT TIME ZONE 'utc') - interval '2 hours', 2147483000)",
    )
    started = time.monotonic()
    with pytest.raises(MigrationLockHeld) as caught:
        apply(url, lock_wait=0.5)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "pid 2147483000" in message
    assert "age 7" in message  # about 7200 s
    assert "no process with that pid" in message
    assert "pa-db migrate unlock" in message
    report = status(url)
    assert report.applied == ("0001_auth_core",)
    assert report.lock is not None and "pid 2147483000" in report.lock
    assert unlock(url) == 1
    assert status(url).lock is None
    assert apply(url) == list(IDS[1:])


def test_lock_timeout_is_retried_then_reported(make_database: MakeDb) -> None:
    """0002 references users, so it needs SHARE ROW EXCLUSIVE on it; an open writer blocks it."""
    url = make_database()
    apply(url, to="0001_auth_core")
    target = dataclasses.replace(target_of(url), lock_timeout_ms=100, lock_retries=2)
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
        with pytest.raises(MigrationError, match=r"3 times.*55P03.*Nothing of it was applied"):
            apply(target, to="0002_sessions_tokens")
        blocker.rollback()
    assert status(url).applied == ("0001_auth_core",)
    assert "user_sessions" not in tables(url)


def test_lock_timeout_retry_succeeds_once_the_lock_is_released(make_database: MakeDb) -> None:
    url = make_database()
    apply(url, to="0001_auth_core")
    target = dataclasses.replace(target_of(url), lock_timeout_ms=200, lock_retries=5)
    blocker = psycopg.connect(url)
    blocker.execute("LOCK TABLE users IN ROW EXCLUSIVE MODE")
    release = threading.Timer(0.3, blocker.rollback)
    release.start()
    try:
        assert apply(target, to="0002_sessions_tokens") == ["0002_sessions_tokens"]
    finally:
        release.join()
        blocker.close()
    assert_snapshot(url, "0002_sessions_tokens")


def test_schema_option_lives_beside_a_host_yoyo_history(
    make_database: MakeDb, tmp_path: Path
) -> None:
    """A host app already uses yoyo in public; ?schema=auth keeps ours apart, tables and history."""
    url = make_database()
    host = tmp_path / "host_migrations"
    host.mkdir()
    (host / "0001_host.sql").write_text("CREATE TABLE notes (id bigint PRIMARY KEY);\n")
    (host / "0001_host.rollback.sql").write_text("DROP TABLE notes;\n")
    psycopg_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    subprocess.run(
        [str(BIN / "yoyo"), "apply", "--batch", "--database", psycopg_url, str(host)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    query(url, "CREATE SCHEMA auth")
    auth_url = url + ("&" if "?" in url else "?") + "schema=auth"
    assert apply(auth_url) == list(IDS)
    assert_snapshot(auth_url, HEAD)
    assert verify(auth_url).ok
    assert tables(url) == {"notes", "_yoyo_log", "_yoyo_migration", "_yoyo_version", "yoyo_lock"}
    assert query(url, "SELECT migration_id FROM public._yoyo_migration") == [("0001_host",)]
    assert rollback(auth_url, all=True) == list(reversed(IDS))
    assert_snapshot(auth_url, "")
    assert "notes" in tables(url)


async def test_migration_status_for_readiness(make_database: MakeDb) -> None:
    url = make_database()
    engine = create_async_engine(parse_database_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            fresh = await migration_status(conn)
            assert fresh.applied == () and fresh.pending == IDS and not fresh.at_head
            assert (await conn.execute(__import__("sqlalchemy").text("SELECT 1"))).scalar() == 1
        apply(url, to="0003_mfa")
        async with engine.connect() as conn:
            partial = await migration_status(conn)
        assert partial.applied == IDS[:3] and partial.pending == IDS[3:]
        apply(url)
        async with engine.connect() as conn:
            assert (await migration_status(conn)).at_head
            assert (await migration_status(conn, schema="public")).at_head
            assert not (await migration_status(conn, schema="missing")).applied
    finally:
        await engine.dispose()


def test_apply_accepts_settings_and_every_url_form(make_database: MakeDb) -> None:
    url = make_database()
    settings = Settings.from_env({"DATABASE_URL": url, "DB_ENV": "test"})
    assert apply(settings, to="0001_auth_core") == ["0001_auth_core"]
    asyncpg_form = parse_database_url(url).render_as_string(hide_password=False)
    assert asyncpg_form.startswith("postgresql+asyncpg://")
    assert apply(asyncpg_form, to="0002_sessions_tokens") == ["0002_sessions_tokens"]
    assert apply(url, dry_run=True) == list(IDS[2:])
    assert status(url).applied == IDS[:2]


def test_rollback_is_always_explicit_and_checked(make_database: MakeDb) -> None:
    url = make_database()
    apply(url, to="0003_mfa")
    with pytest.raises(MigrationError, match="exactly one of"):
        rollback(url)
    with pytest.raises(MigrationError, match="exactly one of"):
        rollback(url, steps=1, all=True)
    with pytest.raises(MigrationError, match=r"--steps must be .* >= 1, got 0"):
        rollback(url, steps=0)
    with pytest.raises(MigrationError, match="more than the 3 applied"):
        rollback(url, steps=4)
    with pytest.raises(UnknownMigration, match=r"--to '0009_nope' .*known: 0001_auth_core"):
        rollback(url, to="0009_nope")
    with pytest.raises(UnknownMigration):
        apply(url, to="nope")
    with pytest.raises(MigrationError, match="is not applied"):
        rollback(url, to="0005_audit")
    assert rollback(url, to="0001_auth_core", dry_run=True) == ["0003_mfa", "0002_sessions_tokens"]
    assert status(url).applied == IDS[:3]
    assert rollback(url, steps=2) == ["0003_mfa", "0002_sessions_tokens"]
    assert_snapshot(url, "0001_auth_core")


def test_missing_database_and_schema_are_clear_errors(make_database: MakeDb) -> None:
    url = make_database()
    gone = url.rsplit("/", 1)[0] + "/pa_db_does_not_exist_xyz"
    if "?" in url:
        gone += "?" + url.split("?", 1)[1]
    with pytest.raises(MigrationError, match="database does not exist"):
        apply(gone)
    missing = url + ("&" if "?" in url else "?") + "schema=nowhere"
    with pytest.raises(MigrationError, match=r"schema 'nowhere'.*does not exist"):
        apply(missing)
    with pytest.raises(MigrationError, match=r"\?schema= must be one plain lower-case identifier"):
        apply(url + ("&" if "?" in url else "?") + "schema=Odd%20Schema")
    assert tables(url) == set()


def test_verify_detects_drift_invalid_objects_and_orphans(make_database: MakeDb) -> None:
    url = make_database()
    apply(url)
    assert verify(url).problems == ()
    query(
        url,
        "UPDATE _pa_db_migration_hashes SET sha256 = repeat('0', 64)"
        " WHERE migration_id = '0003_mfa'",
    )
    query(url, "ALTER TABLE users ADD CONSTRAINT users_id_positive CHECK (id > 0) NOT VALID")
    query(
        url,
        "INSERT INTO users (email, password_hash, display_name) VALUES"
        " ('a@x.io', '$x$1', 'same'), ('b@x.io', '$x$2', 'same')",
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(
            url, "CREATE UNIQUE INDEX CONCURRENTLY users_display_name_key ON users (display_name)"
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO user_sessions (session_id, user_id, expires_at)"
            " VALUES ('orphan', 424242, now() + interval '1 hour')"
        )
    problems = "\n".join(verify(url).problems)
    assert "drift: 0003_mfa changed after it was applied" in problems
    assert "validity: constraint users.users_id_positive is NOT VALID" in problems
    assert "validity: index users_display_name_key is INVALID" in problems
    assert "orphans: 1 row(s) of user_sessions break user_sessions_user_id_fkey" in problems
    assert "schema: + constraints users.users_id_positive" in problems
    assert status(url).drift == (
        "0003_mfa: changed since it was applied (recorded sha256 differs)",
    )


def test_plain_yoyo_applies_and_rolls_back_the_package(
    make_database: MakeDb, tmp_path: Path
) -> None:
    """The documented yoyo.ini and `yoyo rollback --all` work with yoyo alone (batch mode)."""
    url = make_database()
    yoyo_url = target_of(url).url.render_as_string(hide_password=False)
    docs = (Path(__file__).resolve().parent.parent / "docs" / "migrations.md").read_text()
    ini = docs.split("```ini\n", 1)[1].split("```", 1)[0]
    lines = [
        f"database = {yoyo_url}" if ln.startswith("database =") else ln for ln in ini.splitlines()
    ]
    (tmp_path / "yoyo.ini").write_text("\n".join(lines).replace("%", "%%") + "\n")
    yoyo = str(BIN / "yoyo")
    subprocess.run([yoyo, "apply"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert_snapshot(url, HEAD)
    report = verify(url)
    assert report.ok and len(report.notes) == len(IDS)  # no recorded hashes: noted, not failed
    source = "package:personal_assistant_db:migrations"
    subprocess.run(
        [yoyo, "rollback", "--all", "--batch", "--database", yoyo_url, source],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert_snapshot(url, "")
