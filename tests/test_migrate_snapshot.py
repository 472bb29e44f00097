"""The schema at head obeys its rules (checked as catalog queries), and the snapshot sees what a
plain up/down test would miss.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from migrate_helpers import query, snap

from personal_assistant_db.migrate import apply, rollback
from personal_assistant_db.migrate.snapshot import diff

MakeDb = Callable[[], str]

# An index is redundant when another non-partial index on the same table starts with the same
# key columns (a unique one only when the other is unique on exactly the same columns).
REDUNDANT_INDEXES = """
    WITH ix AS (
        SELECT indexrelid, indrelid, indisunique, indpred, indexprs,
               string_to_array(indkey::text, ' ')::int2[] AS cols
        FROM pg_index
    )
    SELECT a.indexrelid::regclass::text, b.indexrelid::regclass::text
    FROM ix a JOIN ix b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
    JOIN pg_class c ON c.oid = a.indrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND a.indpred IS NULL AND b.indpred IS NULL
      AND a.indexprs IS NULL AND b.indexprs IS NULL
      AND b.cols[1:cardinality(a.cols)] = a.cols
      AND (NOT a.indisunique OR (b.indisunique AND a.cols = b.cols))
      AND (a.cols <> b.cols OR a.indexrelid > b.indexrelid)
"""

# A foreign key needs an index whose leading columns are the FK's columns, or deleting a parent
# row scans the whole child table.
UNINDEXED_FOREIGN_KEYS = """
    SELECT k.conrelid::regclass::text || '.' || k.conname
    FROM pg_constraint k
    WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
      AND NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = k.conrelid AND i.indpred IS NULL
          AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> k.conkey
          AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey)
"""

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


@pytest.fixture
def head(make_database: MakeDb) -> str:
    url = make_database()
    apply(url)
    return url


def test_no_redundant_index(head: str) -> None:
    assert query(head, REDUNDANT_INDEXES) == []
    query(head, "CREATE INDEX users_is_active_idx ON users (is_active)")
    query(head, "CREATE INDEX users_is_active_email_idx ON users (is_active, email)")
    query(head, "CREATE INDEX user_roles_user_id_idx ON user_roles (user_id)")
    found = set(query(head, REDUNDANT_INDEXES))
    assert found == {
        ("users_is_active_idx", "users_is_active_email_idx"),
        ("user_roles_user_id_idx", "user_roles_pkey"),
    }


def test_every_foreign_key_is_indexed(head: str) -> None:
    assert query(head, UNINDEXED_FOREIGN_KEYS) == []
    query(head, "CREATE TABLE notes (id bigint PRIMARY KEY, user_id bigint REFERENCES users)")
    assert query(head, UNINDEXED_FOREIGN_KEYS) == [("notes.notes_user_id_fkey",)]


WRONG_TYPES = """
    SELECT table_name || '.' || column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name NOT LIKE '%%yoyo%%'
      AND table_name <> '_pa_db_migration_hashes'
      AND ((data_type LIKE 'timestamp%%' AND data_type <> 'timestamp with time zone')
        OR ((column_name = 'id' OR column_name LIKE '%%\\_id' OR column_name = 'granted_by')
            AND data_type <> 'bigint'
            AND (table_name, column_name) <> ('user_sessions', 'session_id')))
"""


def test_timestamps_are_timestamptz_and_keys_bigint(head: str) -> None:
    assert query(head, WRONG_TYPES, ()) == []
    query(head, "CREATE TABLE later (id integer PRIMARY KEY, seen_at timestamp)")
    assert sorted(query(head, WRONG_TYPES, ())) == [
        ("later.id", "integer"),
        ("later.seen_at", "timestamp without time zone"),
    ]


def test_audit_rows_survive_a_user_delete_and_grants_cascade(head: str) -> None:
    query(head, f"INSERT INTO users (email, password_hash) VALUES ('gone@example.com', '{HASH}')")
    uid = query(head, "SELECT id FROM users")[0][0]
    for statement in (
        "INSERT INTO security_events (user_id, event_type, severity)"
        " VALUES (%s, 'login.ok', 'info')",
        "INSERT INTO access_audit_logs (user_id, resource, action, granted)"
        " VALUES (%s, 'a', 'b', true)",
        "INSERT INTO user_sessions (session_id, user_id, expires_at)"
        " VALUES ('s', %s, now() + '1h')",
        "INSERT INTO auth_tokens (user_id, token_hash, expires_at)"
        " VALUES (%s, repeat('0', 64), now() + '1h')",
        "INSERT INTO mfa_configurations (user_id) VALUES (%s)",
        "INSERT INTO user_roles (user_id, role_id) SELECT %s, id FROM roles WHERE name = 'user'",
    ):
        query(head, statement, (uid,))
    query(head, "DELETE FROM users WHERE id = %s", (uid,))
    assert query(head, "SELECT user_id FROM security_events") == [(None,)]
    assert query(head, "SELECT user_id FROM access_audit_logs") == [(None,)]
    for table in ("user_sessions", "auth_tokens", "mfa_configurations", "user_roles"):
        assert query(head, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_at_most_one_primary_role_per_user(head: str) -> None:
    query(head, f"INSERT INTO users (email, password_hash) VALUES ('p@example.com', '{HASH}')")
    grant = (
        "INSERT INTO user_roles (user_id, role_id, is_primary)"
        " SELECT u.id, r.id, %s FROM users u, roles r WHERE r.name = %s"
    )
    query(head, grant, (True, "user"))
    query(head, grant, (False, "premium"))
    with pytest.raises(psycopg.errors.UniqueViolation, match="user_roles_one_primary_per_user"):
        query(head, grant, (True, "administrator"))
    with pytest.raises(psycopg.errors.UniqueViolation, match="user_roles_pkey"):
        query(head, grant, (False, "user"))


def test_users_rules(head: str) -> None:
    insert = "INSERT INTO users (email, password_hash) VALUES (%s, %s)"
    query(head, insert, ("Case@Example.com", HASH))
    with pytest.raises(psycopg.errors.UniqueViolation, match="users_email_lower_key"):
        query(head, insert, ("case@example.COM", HASH))
    with pytest.raises(psycopg.errors.CheckViolation, match="users_password_hash_format"):
        query(head, insert, ("plain@example.com", "hunter2"))
    with pytest.raises(psycopg.errors.CheckViolation, match="users_email_format"):
        query(head, insert, ("no-at-sign", HASH))
    before = query(head, "SELECT updated_at FROM users")[0][0]
    query(head, "UPDATE users SET display_name = 'C'")
    assert query(head, "SELECT updated_at FROM users")[0][0] > before


def test_enumerable_values_are_checked(head: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="security_events_severity_known"):
        query(head, "INSERT INTO security_events (event_type, severity) VALUES ('x', 'urgent')")
    with pytest.raises(psycopg.errors.CheckViolation, match="permissions_action_format"):
        query(head, "INSERT INTO permissions (resource, action) VALUES ('tasks', 'Bad:Action')")


def test_seed_permissions_are_resource_action(head: str) -> None:
    rows = query(head, "SELECT name, resource, action FROM permissions")
    assert len(rows) == 13
    assert all(name == f"{res}:{act}" for name, res, act in rows)


def test_snapshot_catches_what_a_plain_up_down_test_misses(make_database: MakeDb) -> None:
    """A rollback that leaves an enum type (or an index) behind is visible in the diff."""
    url = make_database()
    apply(url, to="0001_auth_core")
    before = snap(url)
    query(url, "CREATE TYPE mood AS ENUM ('calm', 'busy')")
    query(url, "CREATE INDEX users_created_at_idx ON users (created_at)")
    lines = diff(before, snap(url))
    assert "+ types mood: e calm,busy" in lines
    assert any(line.startswith("+ indexes users_created_at_idx:") for line in lines)
    rollback(url, all=True)
    assert snap(url)["types"] == {"mood": "e calm,busy"}


def test_dropped_and_re_added_column_compares_equal(make_database: MakeDb) -> None:
    """Positions count live columns: a rollback that drops a column, then a re-apply that adds it
    again, gives the same snapshot (PostgreSQL keeps the dropped column's attnum slot)."""
    url = make_database()
    apply(url, to="0001_auth_core")
    query(url, "ALTER TABLE users ADD COLUMN nickname text")
    with_column = snap(url)
    query(url, "ALTER TABLE users DROP COLUMN nickname")
    query(url, "ALTER TABLE users ADD COLUMN nickname text")
    assert diff(with_column, snap(url)) == []


def test_only_optional_relations_have_nullable_foreign_keys(head: str) -> None:
    """Mandatory relations are NOT NULL; the nullable ones are exactly the optional ones, and
    those are the ones that SET NULL (audit rows, hierarchy, granted_by) or an optional session."""
    rows = query(
        head,
        """
        SELECT c.relname || '.' || a.attname, k.confdeltype::text
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
        WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
          AND NOT a.attnotnull
        """,
    )
    assert dict(rows) == {
        "auth_tokens.session_id": "c",
        "roles.parent_role_id": "n",
        "users.default_role_id": "n",  # 0008: the app's default role, optional
        "users.role_assigned_by": "n",
        "user_roles.granted_by": "n",
        "security_events.user_id": "n",
        "access_audit_logs.user_id": "n",
    }
