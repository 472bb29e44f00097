"""``pa-db migrate verify`` owns only the package's objects (migrate/ownership.py).

The app's own tables beside the package's, the indexes and triggers it adds to them, and every
object an extension owns are never drift; the package's objects, missing, changed or grown by a
column or constraint, still are. Real PostgreSQL (Debian's 15 ships contrib, so CREATE EXTENSION
pg_stat_statements works without preloading it), real ``pa-db migrate verify`` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest
from migrate_helpers import query

from personal_assistant_db.migrate import apply, verify
from personal_assistant_db.migrate.ownership import split_differences
from personal_assistant_db.migrate.target import target_of

MakeDb = Callable[[], str]

APP_SCHEMA = """
CREATE TABLE todos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title text NOT NULL CHECK (title <> ''),
    done boolean NOT NULL DEFAULT false
);
CREATE INDEX todos_user_id_idx ON todos (user_id);
CREATE TYPE todo_priority AS ENUM ('low', 'high');
CREATE FUNCTION todo_count(bigint) RETURNS bigint LANGUAGE sql AS
    'SELECT count(*) FROM todos WHERE user_id = $1';
CREATE VIEW open_todos AS SELECT * FROM todos WHERE NOT done;
CREATE INDEX users_created_at_idx ON users (created_at);
"""


def available_extensions(url: str) -> set[str]:
    rows = query(url, "SELECT name FROM pg_available_extensions")
    return {r[0] for r in rows}


def pa_db_verify(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "migrate", "verify", "--json"],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("schema", ["", "auth"])
def test_the_apps_own_objects_are_notes_not_drift(make_database: MakeDb, schema: str) -> None:
    url = make_database()
    if schema:
        query(url, f"CREATE SCHEMA {schema}")
        url += f"?schema={schema}"
    apply(url)
    with target_of(url).connect() as conn:
        conn.execute(APP_SCHEMA.encode())
        conn.execute(
            "INSERT INTO users (email, password_hash) VALUES ('a@example.com', '$x$1');"
            "INSERT INTO todos (user_id, title) SELECT id, 'write docs' FROM users"
        )
    result = pa_db_verify(url)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == []
    assert report["notes"] == [
        "not the package's, left alone: function todo_count(bigint)",
        "not the package's, left alone: index users_created_at_idx on users",
        "not the package's, left alone: sequence todos_id_seq",
        "not the package's, left alone: table todos (4 columns, 3 constraints, 2 indexes)",
        "not the package's, left alone: type todo_priority",
        "not the package's, left alone: view open_todos",
    ]


def test_orphans_and_invalid_objects_of_the_app_are_not_the_packages(
    make_database: MakeDb,
) -> None:
    url = make_database()
    apply(url)
    query(url, "CREATE TABLE notes (id int PRIMARY KEY, user_id bigint REFERENCES users (id))")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO notes VALUES (1, 424242)")  # an orphan in the app's table
    query(url, "ALTER TABLE notes ADD CONSTRAINT notes_id_positive CHECK (id > 0) NOT VALID")
    report = verify(url)
    assert report.problems == ()


def test_the_packages_objects_are_still_drift_when_changed(make_database: MakeDb) -> None:
    url = make_database()
    apply(url)
    query(url, "ALTER TABLE users ADD COLUMN nickname text NOT NULL DEFAULT ''")
    query(url, "ALTER TABLE roles ADD CONSTRAINT roles_short CHECK (length(name) < 30)")
    query(url, "DROP INDEX security_events_occurred_at_idx")
    query(
        url,
        "CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RETURN NEW; END; $$",
    )
    query(url, "CREATE TABLE todos (id int PRIMARY KEY)")
    problems = "\n".join(verify(url).problems)
    assert "schema: + columns users.nickname" in problems
    assert "schema: + constraints roles.roles_short" in problems
    assert "schema: - indexes security_events_occurred_at_idx" in problems
    assert "schema: - functions set_updated_at()" in problems
    assert "schema: + functions set_updated_at()" in problems
    assert "todos" not in problems


@pytest.mark.parametrize("extension", ["pg_stat_statements", "pg_trgm", "citext"])
@pytest.mark.parametrize("schema", ["", "auth"])
def test_objects_an_extension_owns_are_never_drift(
    make_database: MakeDb, extension: str, schema: str
) -> None:
    url = make_database()
    if extension not in available_extensions(url):
        pytest.skip(f"{extension} is not shipped with this PostgreSQL (install its contrib)")
    if schema:
        query(url, f"CREATE SCHEMA {schema}")
        url += f"?schema={schema}"
    apply(url)
    # Created in the migrated schema (the search_path's first schema), as `CREATE EXTENSION`
    # without SCHEMA does: its views, functions, types and operators land beside the tables.
    with target_of(url).connect() as conn:
        conn.execute(f'CREATE EXTENSION "{extension}"'.encode())
        members = conn.execute(
            "SELECT count(*) FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid"
            " WHERE d.deptype = 'e' AND x.extname = %s",
            (extension,),
        ).fetchone()
    assert members is not None and members[0] > 0
    result = pa_db_verify(url)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [] and report["notes"] == []


def test_split_differences_keeps_the_package_rule() -> None:
    expected = {
        "columns": {"users.id": "bigint NOT NULL #1"},
        "indexes": {"users_pkey": "CREATE UNIQUE INDEX users_pkey ON users USING btree (id)"},
        "functions": {"f()": "body"},
    }
    live = {
        "columns": {"users.id": "integer NOT NULL #1", "todos.id": "int #1"},
        "indexes": {
            "users_pkey": "CREATE UNIQUE INDEX users_pkey ON users USING btree (id)",
            "users_x": "CREATE INDEX users_x ON users USING btree (id)",
        },
        "functions": {"g()": "other"},
    }
    drift, notes = split_differences(expected, live)
    assert drift == [
        "+ columns users.id: integer NOT NULL #1",
        "- columns users.id: bigint NOT NULL #1",
        "- functions f(): body",
    ]
    assert notes == [
        "not the package's, left alone: function g()",
        "not the package's, left alone: index users_x on users",
        "not the package's, left alone: table todos",
    ]
