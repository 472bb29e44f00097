"""Expand (migrate/adoption/expand.py) on real PostgreSQL: both app versions on one database,
each seeing the other's writes; rollback gives back every legacy value (checksums); a failure
leaves the database as it was."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from adoption_seed import CLEAN, legacy_database, pa_db, rows
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from personal_assistant_db.errors import MigrationError
from personal_assistant_db.migrate import (
    adopt,
    migration_status,
    rollback,
    status,
    table_checksums,
)
from personal_assistant_db.migrate.adoption import hash_secret
from personal_assistant_db.migrate.snapshot import snapshot
from personal_assistant_db.migrate.target import target_of


def _snap(url: str) -> dict[str, dict[str, str]]:
    with target_of(url).connect() as conn:
        return snapshot(conn)


@pytest.fixture
def expanded(make_database: Callable[[], str]) -> str:
    url = legacy_database(make_database(), CLEAN)
    assert adopt(url, batch_size=1).exit_code == 0  # one id per batch: every batch path runs
    return url


def test_the_new_version_reads_the_legacy_rows_through_pa_adopt(expanded: str) -> None:
    [user] = rows(
        expanded,
        "SELECT id, email, display_name, password_hash, is_active, failed_login_count,"
        " last_login_at, created_at, phone_number, verification_token_hash, default_role_id"
        " FROM pa_adopt.users WHERE id = 1",
    )
    assert user[:6] == (1, "ada@example.org", "Ada", "$2b$12$SECREThash", True, 0)
    assert user[6] == datetime(2026, 3, 29, 0, 59, 59, 500000, tzinfo=UTC)  # naive = UTC
    assert user[8:] == ("+15550100", hash_secret("SECRET-verify-1"), 1)
    [token] = rows(expanded, "SELECT token_hash, token_type FROM pa_adopt.auth_tokens")
    assert token == (hash_secret("SECRET-refresh-1"), "refresh")
    [mfa] = rows(expanded, "SELECT totp_secret, backup_codes, trusted_devices"
                           " FROM pa_adopt.mfa_configurations")  # fmt: skip
    assert mfa == (
        "JBSWY3DPSECRETTOTP",
        [hash_secret("SECRETcode1"), hash_secret("SECRETcode2")],
        [{"device": "laptop"}],
    )
    assert rows(expanded, "SELECT severity FROM pa_adopt.security_events ORDER BY id") == [
        ("info",),
        ("medium",),
    ]
    assert rows(expanded, "SELECT description FROM pa_adopt.roles WHERE id = 1") == [("",)]


def test_each_version_sees_the_others_writes(expanded: str) -> None:
    # the new version registers a user and issues a token; the old one sees both
    [(new_id,)] = rows(
        expanded,
        "INSERT INTO pa_adopt.users (email, password_hash, display_name, phone_number)"
        " VALUES ('new@example.org', '$argon2id$v=19$x', 'New', '+15550199') RETURNING id",
    )
    assert new_id == 3  # the legacy sequence continues
    [old] = rows(
        expanded,
        "SELECT email, hashed_password, full_name, phone_number, is_active, created_at IS NOT NULL"
        " FROM users WHERE id = 3",
    )
    assert old == ("new@example.org", "$argon2id$v=19$x", "New", "+15550199", True, True)
    # the old version registers a user; the new one sees it
    rows(
        expanded,
        "INSERT INTO users (email, hashed_password, full_name, created_at)"
        " VALUES ('old@example.org', '$2b$12$old', 'Old', '2026-03-29 01:30:00')",
    )
    [new] = rows(
        expanded,
        "SELECT id, display_name, password_hash, created_at FROM pa_adopt.users"
        " WHERE email = 'old@example.org'",
    )
    assert new == (4, "Old", "$2b$12$old", datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    # updates both ways, column by column
    rows(expanded, "UPDATE pa_adopt.users SET display_name = 'Ada L.' WHERE id = 1")
    rows(expanded, "UPDATE users SET failed_login_attempts = 2 WHERE id = 1")
    assert rows(expanded, "SELECT full_name, _pa_failed_login_count FROM users WHERE id = 1") == [
        ("Ada L.", 2)
    ]
    # a backup code used up by the new version is gone for the old one too
    rows(
        expanded,
        "UPDATE pa_adopt.mfa_configurations SET backup_codes ="
        " array_remove(backup_codes, %s) WHERE user_id = 1",
        (hash_secret("SECRETcode1"),),
    )
    assert rows(expanded, "SELECT backup_codes::text FROM mfa_configurations") == [
        ('["SECRETcode2"]',)
    ]
    # severity round-trips: the new app's 'medium' is the old app's 'warning'
    rows(
        expanded,
        "INSERT INTO pa_adopt.security_events (user_id, event_type, severity)"
        " VALUES (1, 'login.failed', 'medium')",
    )
    assert rows(expanded, "SELECT severity FROM security_events WHERE id = 3") == [("warning",)]
    # the readiness check of the new version (on pa_adopt) sees no pending migration
    assert rows(expanded, "SELECT migration_id FROM pa_adopt._yoyo_migration") == [
        ("adopt_0001_expand",)
    ]


def test_the_new_version_runs_on_the_view_schema_alone(expanded: str) -> None:
    """The new app's connections may have search_path = pa_adopt only: the triggers still find
    their helper functions (their search_path is pinned where expand ran)."""
    with target_of(expanded).connect() as conn:
        conn.execute("SET search_path TO pa_adopt")
        conn.execute(
            "INSERT INTO users (email, password_hash, verification_token_hash)"
            " VALUES ('v@example.org', '$2b$12$v', %s)",
            (hash_secret("x"),),
        )
        conn.execute(
            "INSERT INTO user_sessions (user_id, session_id, ip_address, expires_at)"
            " VALUES (1, 'v-session', '192.0.2.9', now() + interval '1 day')"
        )
    assert rows(
        expanded, "SELECT ip_address FROM user_sessions WHERE session_id = 'v-session'"
    ) == [("192.0.2.9",)]


def test_status_shows_a_half_adopted_database_and_apply_refuses(expanded: str) -> None:
    assert status(expanded).adoption is not None
    shown = pa_db("status", database=expanded)
    assert "adoption expand applied, contract pending" in shown.stdout
    done = pa_db("apply", database=expanded)
    assert done.returncode == 2 and "half-adopted" in done.stderr


def test_rollback_of_expand_gives_back_every_value(make_database: Callable[[], str]) -> None:
    url = legacy_database(make_database(), CLEAN)
    before, schema = table_checksums(url), _snap(url)
    adopt(url)
    rows(url, "UPDATE users SET full_name = full_name")  # writes through the trigger change nothing
    assert rollback(url, steps=1) == ["adopt_0001_expand"]
    assert table_checksums(url) == before
    assert _snap(url) == schema
    assert rows(url, "SELECT to_regnamespace('pa_adopt')") == [(None,)]
    assert adopt(url).applied == ("adopt_0001_expand",)  # and it can be adopted again


def test_a_failure_leaves_the_database_as_it_was(make_database: Callable[[], str]) -> None:
    """A table another session keeps locked: lock_timeout fires, every retry fails, and what
    expand had done on the other tables is undone."""
    url = legacy_database(make_database(), CLEAN)
    before, schema = table_checksums(url), _snap(url)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(target_of(url).url.render_as_string(hide_password=False)
                             .replace("+psycopg", "")) as conn:  # fmt: skip
            conn.execute("LOCK TABLE security_events IN SHARE MODE")
            holding.set()
            release.wait(60)

    locker = threading.Thread(target=hold)
    locker.start()
    try:
        assert holding.wait(10)
        fast = target_of(url, lock_timeout_ms=200)
        with pytest.raises(MigrationError, match="lock_timeout"):
            adopt(fast)
    finally:
        release.set()
        locker.join()
    assert table_checksums(url) == before
    assert _snap(url) == schema
    assert rows(url, "SELECT migration_id FROM _yoyo_migration") == []


async def test_readiness_of_the_new_version_passes_during_expand(expanded: str) -> None:
    """``migration_status`` (the readiness check) on ``pa_adopt``: the package's migrations are
    served by adoption, so the new version's pods become ready during the rolling deploy."""
    engine = create_async_engine(
        make_url(expanded).set(drivername="postgresql+asyncpg"), poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            state = await migration_status(conn, schema="pa_adopt")
    finally:
        await engine.dispose()
    assert state.applied == ("adopt_0001_expand",)
    assert state.at_head
