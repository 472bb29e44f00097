"""`pa-db migrate` as an operator runs it: real subprocesses, real exit codes, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

from migrate_helpers import IDS, query, tables
from sqlalchemy.engine import make_url

from personal_assistant_db.migrate.snapshot import BOOKKEEPING_TABLES

MakeDb = Callable[[], str]
CANARY = "Canary-Migrate-Secret-77"


def pa_db(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_status_apply_verify_rollback_round(make_database: MakeDb) -> None:
    url = make_database()
    fresh = pa_db("status", "--json", url=url)
    assert fresh.returncode == 0, fresh.stderr
    assert as_json(fresh)["pending"] == list(IDS) and not as_json(fresh)["at_head"]

    dry = pa_db("apply", "--dry-run", "--json", url=url)
    assert as_json(dry)["would_apply"] == list(IDS)
    assert query(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'users'") == [(0,)]

    done = pa_db("apply", "--to", "0004_rbac", url=url)
    assert done.returncode == 0 and "applied 0004_rbac" in done.stdout
    assert pa_db("apply", "--json", "--database", url).returncode == 0  # --database wins too
    head = as_json(pa_db("status", "--json", url=url))
    assert head["at_head"] and head["drift"] == []

    assert pa_db("verify", url=url).returncode == 0
    query(url, "ALTER TABLE users DROP COLUMN display_name")
    broken = pa_db("verify", "--json", url=url)
    assert broken.returncode == 1
    assert any("users.display_name" in p for p in as_json(broken)["problems"])

    back = pa_db("rollback", "--steps", "2", "--json", url=url)
    assert as_json(back)["rolled_back"] == [IDS[-1], IDS[-2]]


def test_rollback_needs_an_explicit_target(make_database: MakeDb) -> None:
    url = make_database()
    bare = pa_db("rollback", url=url)
    assert bare.returncode == 2
    assert "one of the arguments --to --steps --all is required" in bare.stderr
    zero = pa_db("rollback", "--steps", "0", url=url)
    assert zero.returncode == 2 and "--steps must be a whole number >= 1, got 0" in zero.stderr
    unknown = pa_db("apply", "--to", "9999_nope", "--json", url=url)
    assert unknown.returncode == 2
    assert "9999_nope" in as_json(unknown)["error"]
    assert query(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'users'") == [(0,)]


def test_bad_connection_input_is_clear_and_hides_the_password(server_url: str) -> None:
    missing = pa_db("status")
    assert missing.returncode == 2 and "DATABASE_URL: is not set" in missing.stderr
    refused = pa_db("status", url=f"postgresql://app:{CANARY}@127.0.0.1:1/app")
    assert refused.returncode == 2
    assert "cannot connect to postgresql+psycopg://app:***@127.0.0.1:1/app" in refused.stderr
    # the same hint table as the app's startup (retry.CONNECT_HINTS), naming what to check
    assert "connection refused: is PostgreSQL running and listening" in refused.stderr
    assert CANARY not in refused.stdout + refused.stderr
    missing_db = make_url(server_url).set(database="pa_no_such_db_x")
    nodb = pa_db("status", url=missing_db.render_as_string(hide_password=False))
    assert nodb.returncode == 2
    assert "the database does not exist: create it or fix the name" in nodb.stderr


def test_lock_held_exits_2_with_pid_and_fix(make_database: MakeDb) -> None:
    url = make_database()
    assert pa_db("apply", "--to", "0001_auth_core", url=url).returncode == 0
    query(url, "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 2147483001)")
    held = pa_db("apply", "--lock-wait", "0.5", url=url)
    assert held.returncode == 2
    assert "pid 2147483001" in held.stderr and "pa-db migrate unlock" in held.stderr
    assert as_json(pa_db("unlock", "--json", url=url))["removed"] == 1
    assert pa_db("apply", url=url).returncode == 0


def test_lint_and_assess_commands(make_database: MakeDb) -> None:
    lint = pa_db("lint", "--json")
    assert lint.returncode == 0 and as_json(lint) == {"ok": True, "findings": []}
    url = make_database()
    report = pa_db("assess", "0002_sessions_tokens", "--json", url=url)
    assert report.returncode == 0, report.stderr
    rows = as_json(report)["statements"]
    assert [r["statement"].split(" (")[0] for r in rows] == [
        "CREATE TABLE user_sessions",
        "CREATE INDEX user_sessions_user_id_idx ON user_sessions",
        "CREATE TABLE auth_tokens",
        "CREATE INDEX auth_tokens_user_id_idx ON auth_tokens",
        "CREATE INDEX auth_tokens_session_id_idx ON auth_tokens",
    ]
    assert rows[0]["locks"] == ["SHARE ROW EXCLUSIVE users"]
    text = pa_db("assess", url=url)
    assert text.returncode == 0 and "0007_audit_time_indexes" in text.stdout
    # assess works on a scratch database: the target gained only bookkeeping, no schema.
    assert tables(url) <= BOOKKEEPING_TABLES


def test_schema_flag_targets_an_existing_schema(make_database: MakeDb) -> None:
    url = make_database()
    missing = pa_db("apply", "--schema", "auth", url=url)
    assert missing.returncode == 2 and "schema 'auth'" in missing.stderr
    query(url, "CREATE SCHEMA auth")
    assert pa_db("apply", "--schema", "auth", url=url).returncode == 0
    assert as_json(pa_db("status", "--schema", "auth", "--json", url=url))["at_head"]
    assert pa_db("verify", "--schema", "auth", url=url).returncode == 0
    assert "users" not in tables(url)  # public untouched
    rows = query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'auth'")
    assert rows == [(10 + len(BOOKKEEPING_TABLES),)]


def test_a_role_without_create_gets_a_clear_error(make_database: MakeDb) -> None:
    """A read-only role cannot create the bookkeeping tables: exit 2, SQLSTATE, no traceback.
    (The role is cluster-wide, so it gets a unique name and is dropped afterwards.) PostgreSQL
    14 and older grant CREATE on schema public to PUBLIC; 15 revoked it: revoked here too, so the
    role has no CREATE on every version."""
    url = make_database()
    role = f"pa_ro_{uuid.uuid4().hex[:8]}"
    query(url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    query(url, f'CREATE ROLE "{role}" LOGIN')
    try:
        as_role = make_url(url).set(username=role, password=None)
        result = pa_db("status", url=as_role.render_as_string(hide_password=False))
        assert result.returncode == 2
        assert "permission denied for schema public (SQLSTATE 42501)" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        query(url, f'DROP OWNED BY "{role}"')
        query(url, f'DROP ROLE "{role}"')
