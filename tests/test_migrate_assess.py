"""assess reads real locks (pg_locks) and real rewrites (relfilenode), on a scratch database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from test_migrate_support import query, tables

from personal_assistant_db.migrate import apply, assess
from personal_assistant_db.migrate_assess import _measure
from personal_assistant_db.migrate_source import shipped
from personal_assistant_db.migrate_target import target_of

MakeDb = Callable[[], str]


def _scratch_databases(url: str) -> set[str]:
    rows = query(url, "SELECT datname FROM pg_database WHERE datname LIKE 'pa\\_db\\_assess\\_%'")
    return {r[0] for r in rows}


def test_assess_reports_locks_on_existing_tables_and_cleans_up(make_database: MakeDb) -> None:
    url = make_database()
    before = _scratch_databases(url)
    impacts = assess(url, "0004_rbac")
    by_statement = {i.statement.split(" (")[0]: i for i in impacts}
    user_roles = by_statement["CREATE TABLE user_roles"]
    assert user_roles.locks == ("SHARE ROW EXCLUSIVE users",)
    assert by_statement["CREATE TABLE roles"].locks == ()  # new tables block no one
    assert all(i.rewritten == () and i.duration_ms >= 0 for i in impacts)
    assert "users" not in tables(url)  # the target itself was never migrated
    assert _scratch_databases(url) - before == set()


def test_assess_sees_a_rewrite_and_rolls_it_back(make_database: MakeDb, tmp_path: Path) -> None:
    """A column type change rewrites the table under ACCESS EXCLUSIVE; assess says both."""
    url = make_database()
    apply(url, to="0001_auth_core")
    query(url, "INSERT INTO users (email, password_hash) VALUES ('a@b.c', '$x$y')")
    path = tmp_path / "0099_narrow.sql"
    path.write_text("ALTER TABLE users ALTER COLUMN failed_login_count TYPE integer;\n")
    migration = dataclasses.replace(shipped()[0], id="0099_narrow", apply_path=path)
    (impact,) = _measure(target_of(url), migration)
    assert impact.rewritten == ("users", "users_email_lower_key", "users_pkey")
    assert impact.locks == ("ACCESS EXCLUSIVE users",)
    assert query(
        url,
        "SELECT data_type FROM information_schema.columns WHERE column_name = 'failed_login_count'",
    ) == [("bigint",)]


def test_assess_of_a_concurrent_migration_undoes_it(make_database: MakeDb) -> None:
    url = make_database()
    impacts = assess(url, "0007_audit_time_indexes")
    assert [i.locks for i in impacts] == [("(not observable: runs outside a transaction)",)] * 2
    assert not any(i.transactional for i in impacts)


def test_assess_with_nothing_pending_is_empty(make_database: MakeDb) -> None:
    url = make_database()
    apply(url)
    assert assess(url) == []
