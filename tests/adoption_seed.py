"""Legacy databases for the adoption tests (no tests here): the vendored ai_assistant layout,
a clean seed the way the app writes it, and rows the package's schema refuses, each with secrets
whose text the tests look for in every output."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from personal_assistant_db.migrate.adoption import legacy_ddl
from personal_assistant_db.migrate.target import target_of

SECRETS = (
    "SECRET-refresh-1",
    "SECRET-verify-1",
    "SECRET-reset-1",
    "SECRET-session-1",
    "JBSWY3DPSECRETTOTP",
    "SECRETcode1",
    "SECRETcode2",
    "$2b$12$SECREThash",
)

CLEAN = """
INSERT INTO roles (name, description, created_at) VALUES
    ('user', NULL, '2025-10-01 12:00:00'), ('premium', 'Paying', '2025-10-01 12:00:00'),
    ('administrator', 'Ops', '2025-10-01 12:00:00');
INSERT INTO permissions (name, resource_type, action, created_at) VALUES
    ('user:read', 'user', 'read', '2025-10-01 12:00:00'),
    ('memory:write', 'memory', 'write', '2025-10-01 12:00:00'),
    ('system:admin', 'system', 'admin', NULL);
INSERT INTO role_permissions (role_id, permission_id) VALUES (1, 1), (2, 2), (3, 3);
INSERT INTO users (email, phone_number, full_name, hashed_password, is_active, is_verified,
                   verification_token, password_reset_token, password_reset_expires, last_login,
                   failed_login_attempts, created_at, updated_at, default_role_id,
                   role_assigned_at) VALUES
    ('ada@example.org', '+15550100', 'Ada', '$2b$12$SECREThash', true, true,
     'SECRET-verify-1', 'SECRET-reset-1', '2026-03-29 01:30:00', '2026-03-29 00:59:59.5',
     0, '2025-10-01 12:00:00', '2025-10-02 12:00:00', 1, '2025-10-01 12:00:00'),
    ('bob@example.org', NULL, NULL, '$2b$12$bobhash', NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL);
INSERT INTO user_roles (user_id, role_id, is_primary, granted_by, granted_at) VALUES
    (1, 1, true, NULL, '2025-10-01 12:00:00'), (2, 2, NULL, 1, NULL);
INSERT INTO user_sessions (user_id, session_id, device_info, ip_address, user_agent, created_at,
                           last_accessed, expires_at, is_active) VALUES
    (1, 'SECRET-session-1', '{"os": "linux", "n": [1, 2]}', '192.0.2.7', 'curl/8',
     '2026-01-01 00:00:00', '2026-01-01 00:10:00', '2099-01-01 00:00:00', true);
INSERT INTO auth_tokens (user_id, token, token_type, expires_at, is_revoked, created_at) VALUES
    (1, 'SECRET-refresh-1', 'refresh', '2099-01-01 00:00:00', false, '2026-01-01 00:00:00');
INSERT INTO mfa_configurations (user_id, totp_secret, totp_enabled, sms_enabled, phone_number,
                                backup_codes, trusted_devices, created_at) VALUES
    (1, 'JBSWY3DPSECRETTOTP', true, false, NULL, '["SECRETcode1", "SECRETcode2"]',
     '[{"device": "laptop"}]', '2026-01-01 00:00:00');
INSERT INTO security_events (user_id, event_type, event_data, severity, ip_address, user_agent,
                             created_at) VALUES
    (1, 'mfa_totp_enabled', '{"method": "totp"}', 'info', '2001:db8::1', 'Mozilla/5.0',
     '2026-01-01 00:00:00'),
    (1, 'mfa_backup_code_used', NULL, 'warning', '192.0.2.7', NULL, '2026-01-02 00:00:00');
INSERT INTO access_audit_logs (user_id, resource_type, resource_id, action, permission_granted,
                               roles_checked, ip_address, user_agent, created_at) VALUES
    (1, 'task', 7, 'read', true, '{user}', '192.0.2.7', 'curl/8', '2026-01-01 00:00:00');
"""

REFUSED = """
INSERT INTO users (email, hashed_password) VALUES ('Ada@Example.org', '$2b$12$other');
INSERT INTO user_roles (user_id, role_id, is_primary) VALUES (1, 2, true), (1, 1, false);
INSERT INTO user_sessions (user_id, session_id, ip_address, expires_at, created_at) VALUES
    (2, 'SECRET-session-2', 'testclient', '2099-01-01', '2026-01-01');
INSERT INTO security_events (event_type, severity, ip_address) VALUES
    ('login', 'error', 'testclient');
"""


def legacy_database(url: str, *seeds: str) -> str:
    """Create the legacy layout in the (empty) database at ``url`` and run the seeds."""
    with target_of(url).connect() as conn:
        conn.execute(legacy_ddl().encode())
        for seed in seeds:
            conn.execute(seed.encode())
    return url


def pa_db(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    """``pa-db migrate ARGS --database URL`` as a user runs it; fails if a secret is printed."""
    done = subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "migrate", *args, "--database",
         database],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    shown = done.stdout + done.stderr
    leaked = [s for s in SECRETS if s in shown]
    assert not leaked, f"pa-db migrate {' '.join(args)} printed secrets: {leaked}"
    return done


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with target_of(url).connect() as conn:
        cur = conn.execute(query.encode() if params is None else query, params)
        return cur.fetchall() if cur.description else []
