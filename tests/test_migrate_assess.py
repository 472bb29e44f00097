"""assess reads real locks (pg_locks) and real rewrites (relfilenode), on a scratch database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from migrate_helpers import query, tables

from personal_assistant_db.migrate import apply, assess
from personal_assistant_db.migrate._assess import _measure
from personal_assistant_db.migrate.source import shipped
from personal_assistant_db.migrate.target import target_of

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


# The lock table in docs/migrations.md, row by row, against what assess measures.
DOC_ROWS = {
    "CREATE TABLE t (... REFERENCES p)": (
        "CREATE TABLE notes (id bigint PRIMARY KEY, user_id bigint REFERENCES users)",
        False,
    ),
    "CREATE INDEX": ("CREATE INDEX users_created_at_idx ON users (created_at)", False),
    "DROP INDEX": ("DROP INDEX users_email_lower_key", False),
    "ALTER TABLE ADD COLUMN": ("ALTER TABLE users ADD COLUMN nickname text DEFAULT 'x'", False),
    "ALTER TABLE ADD COLUMN ... DEFAULT volatile()": (
        "ALTER TABLE users ADD COLUMN luck float8 DEFAULT random()",
        True,
    ),
    "ALTER TABLE ALTER COLUMN TYPE": (
        "ALTER TABLE users ALTER COLUMN failed_login_count TYPE integer",
        True,
    ),
    "ALTER TABLE ADD CONSTRAINT ... CHECK/FOREIGN KEY": (
        "ALTER TABLE users ADD CONSTRAINT users_id_positive CHECK (id > 0)",
        False,
    ),
    "... NOT VALID": ("ALTER TABLE users VALIDATE CONSTRAINT users_id_positive", False),
    "ALTER TABLE ALTER COLUMN SET NOT NULL": (
        "ALTER TABLE users ALTER COLUMN display_name SET NOT NULL",
        False,
    ),
    "CREATE TRIGGER": (
        "CREATE TRIGGER users_touch BEFORE UPDATE ON users"
        " FOR EACH ROW EXECUTE FUNCTION set_updated_at()",
        False,
    ),
    "INSERT": ("UPDATE users SET display_name = 'x'", False),
}


def _doc_lock_table() -> dict[str, str]:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "migrations.md").read_text()
    rows = {}
    for line in docs.split("Locks taken by common DDL", 1)[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            key = cells[0].split("`")[1]
            rows[key] = cells[1].split("`")[1]
    return rows


def test_documented_lock_table_matches_measured_locks(
    make_database: MakeDb, tmp_path: Path
) -> None:
    url = make_database()
    apply(url)
    query(url, "UPDATE users SET display_name = 'x'")
    query(url, "ALTER TABLE users ADD CONSTRAINT users_id_positive CHECK (id > 0) NOT VALID")
    documented = _doc_lock_table()
    checked = 0
    for key, (statement, rewrites) in DOC_ROWS.items():
        doc_key = next(k for k in documented if k.startswith(key))
        path = tmp_path / f"{checked:04d}_doc.sql"
        path.write_text(statement + ";\n")
        migration = dataclasses.replace(shipped()[0], id=path.stem, apply_path=path)
        if key == "ALTER TABLE ADD CONSTRAINT ... CHECK/FOREIGN KEY":
            query(url, "ALTER TABLE users DROP CONSTRAINT users_id_positive")
        (impact,) = _measure(target_of(url), migration)
        if key == "ALTER TABLE ADD CONSTRAINT ... CHECK/FOREIGN KEY":
            query(
                url, "ALTER TABLE users ADD CONSTRAINT users_id_positive CHECK (id > 0) NOT VALID"
            )
        assert impact.locks == (f"{documented[doc_key]} users",), (key, impact)
        assert ("users" in impact.rewritten) is rewrites, (key, impact)
        checked += 1
    assert checked == len(DOC_ROWS)
