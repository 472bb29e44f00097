"""The rules: which rows of a legacy database the package's schema would refuse or change.

Each rule is a condition on one legacy table. A rule that adoption handles by itself (NULL read
as the app's default, naive timestamps read as UTC, raw tokens hashed) is reported with its
action; a rule whose rows must be resolved first carries ``decision``; a rule whose values do not
survive the mapping carries ``loss`` (the ``TABLE.COLUMN`` that ``contract --accept-loss`` names).
Rows are named by primary key only, never by value.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KEYS_SHOWN", "PACKAGE_PERMISSIONS", "RULES", "Rule"]

KEYS_SHOWN = 20
"""At most this many primary keys are listed per finding."""
_UTC_NOW = "now()"
_SEVERITIES = "('info', 'low', 'medium', 'high', 'critical', 'warning')"
_IPV4 = r"^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$"
_NOT_ADDRESS = (
    f"ip_address IS NOT NULL AND ip_address !~ '{_IPV4}'"
    " AND NOT (ip_address ~ '^[0-9A-Fa-f:.]+$' AND ip_address LIKE '%:%')"
)
_NAME = "'^[a-z][a-z0-9_]{0,62}$'"
_NOT_ADDRESS_ACTION = (
    "ip_address is not an address (Starlette's TestClient writes its name):"
    " NULL in the package's inet column"
)


@dataclass(frozen=True)
class Rule:
    table: str
    rule: str
    where: str
    action: str
    decision: str | None = None
    loss: str | None = None


_RESOLVE = "resolve these rows before contract (change or delete them in the app)"

RULES: tuple[Rule, ...] = (
    Rule(
        "users",
        "email_case_duplicate",
        "lower(email) IN (SELECT lower(email) FROM users GROUP BY 1 HAVING count(*) > 1)",
        "two accounts whose emails differ only in case: the package allows one per lower(email);"
        " no account is merged or dropped by adoption",
        decision="resolve: change one email or merge the accounts in the app, then contract",
    ),
    Rule(
        "users",
        "email_format",
        "NOT (length(email) <= 320 AND email ~ '^[^@\\s]+@[^@\\s]+$')",
        "the package's users_email_format check refuses these emails",
        decision=_RESOLVE,
    ),
    Rule(
        "users",
        "password_hash_format",
        "hashed_password !~ '^\\$[a-z0-9-]+\\$'",
        "not a PHC/modular-crypt hash ($algorithm$...): the package's check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "users",
        "failed_login_negative",
        "failed_login_attempts < 0",
        "a negative failed-login count: the package's check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "users",
        "raw_token",
        "verification_token IS NOT NULL OR password_reset_token IS NOT NULL",
        "kept as sha256 in verification_token_hash / password_reset_token_hash: each stays valid"
        " (the package hashes what the client presents); the raw value goes at contract",
    ),
    Rule(
        "users",
        "null_default",
        "is_active IS NULL OR is_verified IS NULL OR failed_login_attempts IS NULL"
        " OR created_at IS NULL",
        "NULL read as the app's default (is_active true, is_verified false, 0 attempts;"
        " created_at: the time of adoption)",
    ),
    Rule(
        "users",
        "naive_timestamp",
        "created_at IS NOT NULL OR last_login IS NOT NULL",
        "timestamps without time zone read as UTC (the app writes datetime.utcnow())",
    ),
    Rule(
        "user_sessions",
        "device_info_null",
        "device_info IS NULL",
        "NULL device_info becomes {} (the package requires a JSON object)",
    ),
    Rule(
        "user_sessions",
        "device_info_not_object",
        "device_info IS NOT NULL AND json_typeof(device_info) <> 'object'",
        "device_info is JSON but not an object: the package's check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "user_sessions",
        "ip_address_not_an_address",
        _NOT_ADDRESS,
        _NOT_ADDRESS_ACTION,
        decision="accept the loss of these values with --accept-loss user_sessions.ip_address",
        loss="user_sessions.ip_address",
    ),
    Rule(
        "user_sessions",
        "expires_before_created",
        f"expires_at <= COALESCE(created_at, {_UTC_NOW} AT TIME ZONE 'UTC')",
        "expires_at is not after created_at: the package's check refuses it (the session is dead)",
        decision=_RESOLVE,
    ),
    Rule(
        "auth_tokens",
        "raw_token",
        "true",
        "kept as sha256 in token_hash: each stays valid (the package hashes the presented token);"
        " the raw value goes at contract",
    ),
    Rule(
        "auth_tokens",
        "token_type_unknown",
        "token_type IS NOT NULL"
        " AND token_type NOT IN ('refresh', 'access', 'reset', 'verification')",
        "a token type the package does not know: its check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "auth_tokens",
        "expires_before_created",
        f"expires_at <= COALESCE(created_at, {_UTC_NOW} AT TIME ZONE 'UTC')",
        "expires_at is not after created_at: the package's check refuses it (the token is dead)",
        decision=_RESOLVE,
    ),
    Rule(
        "mfa_configurations",
        "backup_codes_json",
        "backup_codes IS NOT NULL AND json_typeof(backup_codes) = 'array'",
        "the JSON list of plain codes becomes a text[] of their sha256: unused codes still work,"
        " once each; totp_secret stays as it is (the authenticator needs it)",
    ),
    Rule(
        "mfa_configurations",
        "backup_codes_not_a_list",
        "backup_codes IS NOT NULL AND json_typeof(backup_codes) <> 'array'",
        "backup_codes is not a JSON list: no usable code can be kept",
        decision="accept the loss with --accept-loss mfa_configurations.backup_codes",
        loss="mfa_configurations.backup_codes",
    ),
    Rule(
        "mfa_configurations",
        "totp_without_secret",
        "totp_enabled AND totp_secret IS NULL",
        "TOTP enabled without a secret: the package's check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "mfa_configurations",
        "sms_without_phone",
        "sms_enabled AND phone_number IS NULL",
        "SMS enabled without a phone number: the package's check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "security_events",
        "severity_warning",
        "severity = 'warning'",
        "'warning' becomes 'medium' (the old app still reads 'warning' during expand)",
    ),
    Rule(
        "security_events",
        "severity_unknown",
        f"severity IS NOT NULL AND severity NOT IN {_SEVERITIES}",
        "a severity the package does not know: read as 'info'",
        decision="accept the loss with --accept-loss security_events.severity",
        loss="security_events.severity",
    ),
    Rule(
        "security_events",
        "ip_address_not_an_address",
        _NOT_ADDRESS,
        _NOT_ADDRESS_ACTION,
        decision="accept the loss of these values with --accept-loss security_events.ip_address",
        loss="security_events.ip_address",
    ),
    Rule(
        "security_events",
        "event_type_format",
        "event_type !~ '^[a-z][a-z0-9_.]{0,99}$'",
        "the package's event_type check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "access_audit_logs",
        "roles_checked_null",
        "roles_checked IS NULL",
        "NULL roles_checked becomes {}",
    ),
    Rule(
        "roles",
        "description_null",
        "description IS NULL",
        "NULL description becomes '' (the package's column is NOT NULL)",
    ),
    Rule(
        "roles",
        "name_format",
        f"name !~ {_NAME}",
        "the package's roles_name_format check refuses it",
        decision=_RESOLVE,
    ),
    Rule(
        "permissions",
        "name_not_resource_action",
        "name IS DISTINCT FROM resource_type || ':' || action",
        "the package computes name as resource:action; this name would change",
        decision=_RESOLVE,
    ),
    Rule(
        "permissions",
        "resource_action_format",
        f"resource_type !~ {_NAME} OR action !~ {_NAME}",
        "the package's resource/action format checks refuse it",
        decision=_RESOLVE,
    ),
    Rule(
        "permissions",
        "description_null",
        "description IS NULL",
        "NULL description becomes ''",
    ),
    Rule(
        "role_permissions",
        "duplicate_grant",
        "(role_id, permission_id) IN (SELECT role_id, permission_id FROM role_permissions"
        " GROUP BY 1, 2 HAVING count(*) > 1)",
        "the same permission granted twice: the package's key is (role_id, permission_id)",
        decision="resolve: delete all but one row of each pair, then contract",
    ),
    Rule(
        "user_roles",
        "duplicate_assignment",
        "(user_id, role_id) IN (SELECT user_id, role_id FROM user_roles"
        " GROUP BY 1, 2 HAVING count(*) > 1)",
        "the same role assigned twice: the package's key is (user_id, role_id)",
        decision="resolve: delete all but one row of each pair, then contract",
    ),
    Rule(
        "user_roles",
        "two_primary_roles",
        "is_primary AND user_id IN (SELECT user_id FROM user_roles WHERE is_primary"
        " GROUP BY 1 HAVING count(*) > 1)",
        "more than one primary role for a user: the package allows one",
        decision="resolve: keep one primary role per user (UPDATE user_roles SET is_primary ...)",
    ),
    Rule(
        "user_roles",
        "expires_before_granted",
        f"expires_at <= COALESCE(granted_at, {_UTC_NOW} AT TIME ZONE 'UTC')",
        "expires_at is not after granted_at: the package's check refuses it",
        decision=_RESOLVE,
    ),
)

PACKAGE_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("profile", "read", "Read one's own profile"),
    ("profile", "update", "Change one's own profile"),
    ("tasks", "read", "Read one's tasks"),
    ("tasks", "write", "Create, change and delete one's tasks"),
    ("notes", "read", "Read one's notes"),
    ("notes", "write", "Create, change and delete one's notes"),
    ("assistant", "advanced", "Use the advanced assistant features"),
    ("integrations", "manage", "Connect calendars, mail and other services"),
    ("export", "create", "Export one's data"),
    ("users", "read", "Read any user account"),
    ("users", "manage", "Lock, unlock and delete user accounts"),
    ("roles", "manage", "Grant and revoke roles"),
    ("audit", "read", "Read security events and access audit logs"),
)
"""Migration 0006's permissions: contract adds those the app lacks (by name)."""
