"""``pa-db migrate adopt --check`` (migrate/adoption/check.py): every row the package's schema
would refuse, by table and primary key, never by value; exit 0 / 1 / 2; nothing applied."""

from __future__ import annotations

import json
from collections.abc import Callable

from adoption_seed import CLEAN, REFUSED, SECRETS, legacy_database, pa_db, rows

from personal_assistant_db.migrate import adopt, table_checksums


def test_a_clean_database_can_go_ahead_and_check_applies_nothing(
    make_database: Callable[[], str],
) -> None:
    url = legacy_database(make_database(), CLEAN)
    before = table_checksums(url)
    done = pa_db("adopt", "--check", "--json", database=url)
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout)
    rules = {(f["table"], f["rule"]): f for f in report["findings"]}
    # handled by adoption itself, reported with what it does
    assert rules[("auth_tokens", "raw_token")]["decision"] is None
    assert "sha256" in rules[("auth_tokens", "raw_token")]["action"]
    assert rules[("security_events", "severity_warning")]["keys"] == ["id=2"]
    assert rules[("users", "naive_timestamp")]["action"].endswith("utcnow())")
    assert rules[("roles", "description_null")]["keys"] == ["id=1"]
    assert rules[("permissions", "package_permissions_missing")]["count"] == 13
    assert table_checksums(url) == before
    assert rows(url, "SELECT to_regclass('_yoyo_migration')") == [(None,)]


def test_rows_that_need_a_decision_are_listed_by_key_and_exit_1(
    make_database: Callable[[], str],
) -> None:
    url = legacy_database(make_database(), CLEAN, REFUSED)
    done = pa_db("adopt", "--check", "--json", database=url)
    assert done.returncode == 1, done.stdout
    found = {(f["table"], f["rule"]): f for f in json.loads(done.stdout)["findings"]}
    assert found[("users", "email_case_duplicate")]["keys"] == ["id=1", "id=3"]
    assert found[("user_roles", "two_primary_roles")]["keys"] == ["id=1", "id=3"]
    assert found[("user_roles", "duplicate_assignment")]["keys"] == ["id=1", "id=4"]
    sessions = found[("user_sessions", "ip_address_not_an_address")]
    assert sessions["keys"] == ["id=2"] and sessions["accept_loss"] == "user_sessions.ip_address"
    assert found[("security_events", "severity_unknown")]["keys"] == ["id=3"]
    assert ("security_events", "event_type_format") not in found  # "login" is a fine type
    text = pa_db("adopt", "--check", database=url)
    assert text.returncode == 1
    assert "[DECIDE] users.email_case_duplicate: 2 row(s) (id=1, id=3)" in text.stdout
    for shown in (done.stdout, text.stdout):
        assert "example.org" not in shown.lower()  # emails are values too
        assert "testclient" not in shown


def test_no_value_reaches_the_report(make_database: Callable[[], str]) -> None:
    url = legacy_database(make_database(), CLEAN, REFUSED)
    report = adopt(url, check=True)
    shown = json.dumps(report.as_dict())
    assert not [s for s in SECRETS if s in shown]
    assert report.exit_code == 1
