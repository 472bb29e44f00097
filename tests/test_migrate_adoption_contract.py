"""Contract (migrate/adoption/contract.py, uncontract.py) on real PostgreSQL: it refuses while
rows need a decision, leaves the package's schema (verify clean), keeps ids and the app's
references, merges RBAC without granting, keeps secrets usable; its rollback needs a flag."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from adoption_seed import CLEAN, REFUSED, legacy_database, pa_db, rows
from migrate_helpers import IDS

from personal_assistant_db.errors import MigrationError
from personal_assistant_db.migrate import adopt, contract, verify
from personal_assistant_db.migrate.adoption import hash_secret
from personal_assistant_db.migrate.adoption.layout import recognise
from personal_assistant_db.migrate.adoption.secrets import CONSUME_BACKUP_CODE_SQL
from personal_assistant_db.migrate.target import target_of

APP_TABLE = (
    "CREATE TABLE todos (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users (id),"
    " title text); INSERT INTO todos (user_id, title) VALUES (1, 'a'), (2, 'b');"
)


@pytest.fixture
def contracted(make_database: Callable[[], str]) -> str:
    url = legacy_database(make_database(), CLEAN, APP_TABLE)
    adopt(url)
    done = pa_db("contract", "--json", database=url)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert "users.hashed_password -> users.password_hash" in report["moved"]
    assert report["dropped"] == [
        "role_permissions.id (a surrogate key no foreign key references)",
        "user_roles.id (a surrogate key no foreign key references)",
    ]
    assert "permission profile:read added" in report["merged"]
    return url


def test_contract_leaves_the_packages_schema(contracted: str) -> None:
    report = verify(contracted)
    assert report.ok, report.problems
    assert rows(contracted, "SELECT count(*) FROM _yoyo_migration") == [(len(IDS) + 2,)]
    assert pa_db("apply", database=contracted).stdout.strip() == "nothing to apply"


def test_ids_and_the_apps_references_are_kept_and_ids_continue(contracted: str) -> None:
    joined = "SELECT t.title, u.email FROM todos t JOIN users u ON u.id = t.user_id ORDER BY t.id"
    assert rows(contracted, joined) == [("a", "ada@example.org"), ("b", "bob@example.org")]
    [(new_id,)] = rows(
        contracted,
        "INSERT INTO users (email, password_hash) VALUES ('c@example.org', '$2b$12$c')"
        " RETURNING id",
    )
    assert new_id == 3


def test_secrets_stay_usable(contracted: str) -> None:
    [(user_id,)] = rows(contracted, "SELECT user_id FROM auth_tokens WHERE token_hash = %s",
                        (hash_secret("SECRET-refresh-1"),))  # fmt: skip
    assert user_id == 1
    assert rows(contracted, "SELECT id FROM users WHERE verification_token_hash = %s",
                (hash_secret("SECRET-verify-1"),)) == [(1,)]  # fmt: skip
    assert rows(contracted, "SELECT totp_secret FROM mfa_configurations") == [
        ("JBSWY3DPSECRETTOTP",)
    ]
    code = {"hash": hash_secret("SECRETcode2"), "user_id": 1}
    assert len(rows(contracted, CONSUME_BACKUP_CODE_SQL, code)) == 1  # works once
    assert rows(contracted, CONSUME_BACKUP_CODE_SQL, code) == []  # and only once


def test_rbac_is_merged_without_granting(contracted: str) -> None:
    grants = rows(
        contracted,
        "SELECT r.name, p.name FROM role_permissions rp JOIN roles r ON r.id = rp.role_id"
        " JOIN permissions p ON p.id = rp.permission_id ORDER BY 1, 2",
    )
    assert grants == [
        ("administrator", "system:admin"),
        ("premium", "memory:write"),
        ("user", "user:read"),
    ]
    assert rows(contracted, "SELECT count(*) FROM permissions") == [(16,)]


def test_contract_refuses_while_rows_need_a_decision(make_database: Callable[[], str]) -> None:
    url = legacy_database(make_database(), CLEAN, REFUSED)
    adopt(url)
    done = pa_db("contract", database=url)
    assert done.returncode == 1
    assert "[DECIDE] users.email_case_duplicate" in done.stdout
    assert rows(url, "SELECT to_regclass('users_email_lower_key')") == [(None,)]
    with pytest.raises(MigrationError, match="not a legacy column"):
        contract(url, accept_loss=("users.nope",))
    rows(
        url,
        "DELETE FROM users WHERE id = 3; DELETE FROM user_roles WHERE id IN (3, 4);",
    )
    done = pa_db(
        "contract",
        "--accept-loss", "user_sessions.ip_address",
        "--accept-loss", "security_events.ip_address",
        "--accept-loss", "security_events.severity",
        database=url,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepted loss: security_events.severity" in done.stdout
    assert rows(url, "SELECT severity, ip_address FROM security_events WHERE id = 3") == [
        ("info", None)
    ]


def test_rollback_of_contract_needs_a_flag_and_says_what_it_cannot_restore(
    contracted: str,
) -> None:
    done = pa_db("rollback", "--steps", "1", database=contracted)
    assert done.returncode == 2
    assert "cannot restore the raw tokens" in done.stderr and "--allow-lossy" in done.stderr
    assert verify(contracted).ok
    done = pa_db("rollback", "--steps", "1", "--allow-lossy", database=contracted)
    assert done.returncode == 0, done.stderr
    # back to the expanded shape: both versions run again
    assert rows(contracted, "SELECT hashed_password, token FROM users"
                            " JOIN auth_tokens ON auth_tokens.user_id = users.id") == [
        ("$2b$12$SECREThash", "sha256:" + hash_secret("SECRET-refresh-1"))
    ]  # fmt: skip
    assert pa_db("rollback", "--steps", "1", database=contracted).returncode == 0
    with target_of(contracted).connect() as conn:
        assert recognise(conn, "public").verdict == "legacy"
