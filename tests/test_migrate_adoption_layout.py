"""Recognising the legacy layout from the catalog (migrate/adoption/layout.py), on real
PostgreSQL: exact layout, the app's extras, changed layouts, the package's own schema, and bad
input. Anything but the exact layout changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from adoption_seed import CLEAN, legacy_database, pa_db, rows
from sqlalchemy.engine import make_url

from personal_assistant_db.migrate import adopt, apply
from personal_assistant_db.migrate.adoption.shape import build_legacy_snapshot, legacy_snapshot
from personal_assistant_db.migrate.snapshot import snapshot
from personal_assistant_db.migrate.target import target_of


def _as(url: str, **parts: str) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)


def _snap(url: str) -> dict[str, dict[str, str]]:
    with target_of(url).connect() as conn:
        return snapshot(conn)


def test_the_shipped_legacy_snapshot_is_the_vendored_ddl(server_url: str) -> None:
    assert build_legacy_snapshot(server_url) == legacy_snapshot(), (
        "regenerate: python -m personal_assistant_db.migrate.adoption.shape SERVER_URL"
    )


def test_the_exact_layout_is_adopted_and_the_apps_extras_are_listed_and_kept(
    make_database: Callable[[], str],
) -> None:
    url = legacy_database(
        make_database(),
        CLEAN,
        "ALTER TABLE users ADD COLUMN nickname text;"
        " CREATE INDEX users_nickname_idx ON users (nickname);"
        " CREATE TABLE todos (id serial PRIMARY KEY, user_id integer REFERENCES users (id));"
        " INSERT INTO todos (user_id) VALUES (1), (2);",
    )
    report = adopt(url, check=True)
    assert report.verdict == "legacy" and report.exit_code == 0, report.message
    assert any(e.startswith("column users.nickname") for e in report.extras)
    assert any("users_nickname_idx" in e for e in report.extras)
    assert "table todos" in report.extras
    adopt(url)
    assert rows(url, "SELECT nickname FROM users ORDER BY id") == [(None,), (None,)]
    assert rows(url, "SELECT user_id FROM todos ORDER BY id") == [(1,), (2,)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "ALTER TABLE users DROP COLUMN phone_number",
            "column users.phone_number: missing (expected character varying(20))",
        ),
        (
            "ALTER TABLE auth_tokens ALTER COLUMN token TYPE text",
            "column auth_tokens.token: expected character varying NOT NULL, found text NOT NULL",
        ),
        ("ALTER TABLE users DROP CONSTRAINT users_email_key", "constraint users.users_email_key"),
        ("DROP TABLE access_audit_logs", "table access_audit_logs: missing"),
    ],
)
def test_a_changed_layout_gets_the_exact_differences_and_nothing_is_touched(
    make_database: Callable[[], str], change: str, expected: str
) -> None:
    url = legacy_database(make_database(), change)
    before = _snap(url)
    done = pa_db("adopt", "--json", database=url)
    assert done.returncode == 2, done.stdout
    report = json.loads(done.stdout)
    assert report["verdict"] == "unknown"
    assert any(d.startswith(expected) for d in report["differences"]), report["differences"]
    assert _snap(url) == before
    assert rows(url, "SELECT to_regnamespace('pa_adopt')") == [(None,)]


def test_the_older_username_layout_is_refused(make_database: Callable[[], str]) -> None:
    url = legacy_database(
        make_database(),
        "ALTER TABLE users RENAME COLUMN hashed_password TO password_hash;"
        " ALTER TABLE users ADD COLUMN username varchar(50);",
    )
    done = pa_db("adopt", "--check", database=url)
    assert done.returncode == 2
    assert "column users.hashed_password: missing" in done.stdout
    assert "kept (the app's own): column users.username" in done.stdout


def test_the_packages_own_schema_has_nothing_to_adopt(make_database: Callable[[], str]) -> None:
    url = make_database()
    apply(url)
    done = pa_db("adopt", database=url)
    assert done.returncode == 2
    assert "nothing to adopt" in done.stdout


def test_no_database_is_a_clear_error(make_database: Callable[[], str]) -> None:
    url = _as(make_database(), database="no_such_database_19a")
    done = pa_db("adopt", "--check", database=url)
    assert done.returncode == 2
    assert "no_such_database_19a" in done.stderr and "Traceback" not in done.stderr


def test_a_role_that_may_not_alter_the_tables_is_refused_and_nothing_changes(
    make_database: Callable[[], str],
) -> None:
    url = legacy_database(make_database(), CLEAN)
    role = f"pa_adopt_reader_{uuid.uuid4().hex[:8]}"
    rows(
        url,
        f"CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
        f" GRANT CREATE ON SCHEMA public TO {role};",
    )
    before = _snap(url)
    reader = _as(url, username=role)
    try:
        done = pa_db("adopt", database=reader)
        assert done.returncode == 2
        assert "does not own" in done.stdout
        assert _snap(url) == before
    finally:
        rows(url, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_apply_on_the_legacy_layout_points_at_adopt(make_database: Callable[[], str]) -> None:
    url = legacy_database(make_database(), CLEAN)
    before = _snap(url)
    done = pa_db("apply", database=url)
    assert done.returncode == 2
    assert "pa-db migrate adopt --check" in done.stderr
    assert _snap(url) == before
