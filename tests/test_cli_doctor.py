"""``pa-db doctor`` as a user runs it: a real subprocess on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest

from personal_assistant_db.testing import plain_url


def doctor(url: str | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL"))}
    if url is not None:
        environ["DATABASE_URL"] = url
    environ.update(DB_ENV="test", **env)
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.fixture
def problem_db(make_database: Callable[[], str]) -> str:
    url = make_database()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent, v int)")
        conn.execute("CREATE INDEX child_v ON child (v)")
        conn.execute("CREATE INDEX child_v_again ON child (v)")
    return url


def test_json_report_and_fail_on(problem_db: str) -> None:
    done = doctor(problem_db, "--json", "--fail-on", "warning")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == 1
    assert set(report["summary"]) == {"error", "warning", "info"}
    assert sum(report["summary"].values()) == len(report["findings"])
    by_kind = {(f["analysis"], f["object"]): f for f in report["findings"]}
    dup = by_kind["duplicate_index", "public.child.child_v_again"]
    assert dup["severity"] == "warning"
    assert dup["action"] == 'DROP INDEX CONCURRENTLY "public"."child_v_again";'
    fk = by_kind["unindexed_foreign_key", "public.child.child_parent_fkey"]
    assert (
        fk["action"]
        == 'CREATE INDEX CONCURRENTLY "child_parent_idx" ON "public"."child" ("parent");'
    )
    for finding in report["findings"]:
        assert set(finding) == {"severity", "analysis", "object", "summary", "evidence", "action"}
    # the default threshold is error: exit 1 exactly when an error finding exists
    default = doctor(problem_db, "--json")
    errors = json.loads(default.stdout)["summary"]["error"]
    assert default.returncode == (1 if errors else 0)


def test_text_is_grouped_by_severity_and_plain_off_a_tty(problem_db: str) -> None:
    done = doctor(problem_db, "--fail-on", "error")
    text = done.stdout
    assert "\033[" not in text  # stdout is a pipe, not a TTY
    assert text.startswith("pa-db doctor: server_version=")
    headers = [
        line for line in text.splitlines() if line.split(" (")[0] in {"ERROR", "WARNING", "INFO"}
    ]
    order = [h.split(" (")[0] for h in headers]
    assert order == sorted(order, key=["ERROR", "WARNING", "INFO"].index)
    assert "WARNING" in order and "INFO" in order
    assert '    action: DROP INDEX CONCURRENTLY "public"."child_v_again";' in text
    coloured = doctor(problem_db, "--colour", "always").stdout
    assert "\033[33mWARNING" in coloured


def test_schema_flag(problem_db: str) -> None:
    done = doctor(problem_db, "--json", "--schema", "nothing_here")
    report = json.loads(done.stdout)
    assert report["facts"]["schema"] == "nothing_here"
    assert not [f for f in report["findings"] if f["object"].startswith("public.")]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--fail-on", "sometimes"], "--fail-on"),
        (["--machine-memory", "lots"], "--machine-memory"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(problem_db: str, args: list[str], named: str) -> None:
    done = doctor(problem_db, *args)
    assert done.returncode == 2
    assert named in done.stderr


def test_missing_url_exits_2_naming_it() -> None:
    done = doctor(None)
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr


def test_unreachable_server_exits_2_without_the_password() -> None:
    done = doctor("postgresql://app:sup3r-s3cret@127.0.0.1:1/app", DB_CONNECT_RETRY_DEADLINE="0.5")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "sup3r-s3cret" not in done.stderr and "pa-db doctor:" in done.stderr
