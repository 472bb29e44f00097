"""Helpers shared by the migration tests (no tests here): snapshots, SQL, row hashes, seed rows."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from personal_assistant_db.migrate.snapshot import Snapshot, diff, snapshot
from personal_assistant_db.migrate.source import expected_snapshots, shipped_ids
from personal_assistant_db.migrate.target import target_of

IDS = shipped_ids()
HEAD = IDS[-1]


def snap(url: str) -> Snapshot:
    with target_of(url).connect() as conn:
        return snapshot(conn)


def expected(last: str) -> Snapshot:
    """The shipped snapshot after ``last`` ("" = base)."""
    result: Snapshot = expected_snapshots()[last]
    return result


def assert_snapshot(url: str, last: str) -> None:
    lines = diff(expected(last), snap(url))
    assert lines == [], f"schema differs from the expected snapshot at {last or 'base'}:\n" + (
        "\n".join(lines)
    )


def query(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    with target_of(url).connect() as conn:
        cur = conn.execute(text.encode() if params is None else text, params)
        return cur.fetchall() if cur.description else []


def tables(url: str) -> set[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {r[0] for r in rows}


def row_hashes(url: str) -> dict[str, str]:
    """md5 over every row of every non-bookkeeping table, in primary-key order."""
    result = {}
    with target_of(url).connect() as conn:
        for name in sorted(tables(url)):
            if "yoyo" in name or name.startswith("_pa_db"):
                continue
            row = conn.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
                ).format(sql.Identifier(name))
            ).fetchone()
            assert row is not None
            result[name] = row[0]
    return result


SEED_ROWS: list[tuple[str, str]] = [
    (
        "users",
        "INSERT INTO users (email, password_hash, display_name) VALUES"
        " ('Ada@example.com', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 'Ada'),"
        " ('bob@example.com', '$2b$12$abcdefghijklmnopqrstuv', NULL)",
    ),
    (
        "user_sessions",
        "INSERT INTO user_sessions (session_id, user_id, device_info, ip_address, expires_at)"
        " SELECT 'sess-1', id, '{\"os\": \"linux\"}', '192.0.2.1', now() + interval '1 day'"
        " FROM users WHERE email = 'bob@example.com'",
    ),
    (
        "auth_tokens",
        "INSERT INTO auth_tokens (user_id, token_hash, expires_at)"
        " SELECT id, repeat('ab', 32), now() + interval '30 days' FROM users"
        " WHERE email = 'bob@example.com'",
    ),
    (
        "mfa_configurations",
        "INSERT INTO mfa_configurations (user_id, totp_secret, totp_enabled)"
        " SELECT id, 'JBSWY3DPEHPK3PXP', true FROM users WHERE email = 'bob@example.com'",
    ),
    ("roles", "INSERT INTO roles (name, description) VALUES ('support', 'Helps users')"),
    ("permissions", "INSERT INTO permissions (resource, action) VALUES ('tickets', 'read')"),
    (
        "role_permissions",
        "INSERT INTO role_permissions (role_id, permission_id) SELECT r.id, p.id"
        " FROM roles r, permissions p WHERE r.name = 'support' AND p.name = 'tickets:read'",
    ),
    (
        "user_roles",
        "INSERT INTO user_roles (user_id, role_id, is_primary) SELECT u.id, r.id, true"
        " FROM users u, roles r WHERE u.email = 'bob@example.com' AND r.name = 'support'",
    ),
    (
        "security_events",
        "INSERT INTO security_events (user_id, event_type, severity, details)"
        " SELECT id, 'login.failed', 'medium', '{\"attempt\": 3}' FROM users"
        " WHERE email = 'bob@example.com'",
    ),
    (
        "access_audit_logs",
        "INSERT INTO access_audit_logs (user_id, resource, action, granted, roles_checked)"
        " SELECT id, 'tickets', 'read', true, ARRAY['support'] FROM users"
        " WHERE email = 'bob@example.com'",
    ),
]


def seed_existing_tables(url: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Insert the seed rows into whichever tables exist now (but ``skip``); return those seeded."""
    present = tables(url)
    seeded = []
    with target_of(url).connect() as conn:
        for table, statement in SEED_ROWS:
            if table in present and table not in skip:
                conn.execute(statement.encode())
                seeded.append(table)
    return seeded


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)
