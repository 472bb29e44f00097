"""The column mapping: every column of the package's schema, computed from the legacy row (up),
and every legacy column, computed back from the package's columns (down).

Expressions are SQL with ``{column}`` placeholders: in ``up`` they name legacy columns, in
``down`` columns of the package's schema. The expand trigger substitutes ``NEW.<column>`` (or the
shadow column that holds a package column during expand). The helper functions (``_pa_adopt_*``)
are created by expand, in the adopted schema; see ``secrets.py`` and ``expand.py``.

This module is data only; docs/adopting.md shows the same mapping as a table.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

__all__ = ["SHADOW", "TABLES", "TableMap", "placeholders", "render", "shadow"]

SHADOW = "_pa_"
_UTC = "({} AT TIME ZONE 'UTC')"


def shadow(column: str) -> str:
    """The physical column that holds a package column during expand."""
    return SHADOW + column


def render(expression: str, names: dict[str, str]) -> str:
    """``expression`` with each ``{column}`` it reads replaced by ``names[column]``."""
    return expression.format(**{n: names[n] for n in placeholders(expression)})


def placeholders(expression: str) -> tuple[str, ...]:
    """The ``{column}`` names an expression reads."""
    return tuple(
        sorted({f for _, f, _, _ in string.Formatter().parse(expression) if f is not None and f})
    )


def _utc(column: str) -> str:
    return _UTC.format("{" + column + "}")


@dataclass(frozen=True)
class TableMap:
    """One legacy table: package column -> up expression, legacy column -> down expression."""

    name: str
    up: dict[str, str]
    down: dict[str, str]
    sentinel: str  # a package column with no default that only the new version sets on INSERT
    dropped: tuple[str, ...] = ()  # legacy columns with no counterpart (surrogate keys)


TABLES: tuple[TableMap, ...] = (
    TableMap(
        name="roles",
        up={
            "name": "{name}",
            "description": "COALESCE({description}, '')",
            "parent_role_id": "{parent_role_id}",
            "created_at": f"COALESCE({_utc('created_at')}, now())",
            "updated_at": f"COALESCE({_utc('updated_at')}, {_utc('created_at')}, now())",
        },
        down={
            "name": "{name}",
            "description": "{description}",
            "parent_role_id": "{parent_role_id}::integer",
            "created_at": _utc("created_at"),
            "updated_at": _utc("updated_at"),
        },
        sentinel="name",
    ),
    TableMap(
        name="permissions",
        up={
            "resource": "{resource_type}",
            "action": "{action}",
            "description": "COALESCE({description}, '')",
            "created_at": f"COALESCE({_utc('created_at')}, now())",
        },
        down={
            "name": "{resource} || ':' || {action}",
            "resource_type": "{resource}",
            "action": "{action}",
            "description": "{description}",
            "created_at": _utc("created_at"),
        },
        sentinel="resource",
    ),
    TableMap(
        name="role_permissions",
        up={
            "role_id": "{role_id}",
            "permission_id": "{permission_id}",
            "granted_at": f"COALESCE({_utc('created_at')}, now())",
        },
        down={
            "role_id": "{role_id}::integer",
            "permission_id": "{permission_id}::integer",
            "created_at": _utc("granted_at"),
        },
        sentinel="role_id",
        dropped=("id",),
    ),
    TableMap(
        name="users",
        up={
            "email": "{email}",
            "display_name": "{full_name}",
            "password_hash": "{hashed_password}",
            "is_active": "COALESCE({is_active}, true)",
            "is_verified": "COALESCE({is_verified}, false)",
            "failed_login_count": "COALESCE({failed_login_attempts}, 0)",
            "locked_until": _utc("locked_until"),
            "last_login_at": _utc("last_login"),
            "created_at": f"COALESCE({_utc('created_at')}, now())",
            "updated_at": f"COALESCE({_utc('updated_at')}, {_utc('created_at')}, now())",
            "phone_number": "{phone_number}",
            "verification_token_hash": "_pa_adopt_sha256({verification_token})",
            "password_reset_token_hash": "_pa_adopt_sha256({password_reset_token})",
            "password_reset_expires_at": _utc("password_reset_expires"),
            "default_role_id": "{default_role_id}",
            "role_assigned_at": _utc("role_assigned_at"),
            "role_assigned_by": "{role_assigned_by}",
        },
        down={
            "email": "{email}",
            "full_name": "{display_name}",
            "hashed_password": "{password_hash}",
            "is_active": "{is_active}",
            "is_verified": "{is_verified}",
            "failed_login_attempts": "{failed_login_count}::integer",
            "locked_until": _utc("locked_until"),
            "last_login": _utc("last_login_at"),
            "created_at": _utc("created_at"),
            "updated_at": _utc("updated_at"),
            "phone_number": "{phone_number}",
            # only the hash is known: a token issued by the new version is not the old one's
            "verification_token": "_pa_adopt_nothing({verification_token_hash})",
            "password_reset_token": "_pa_adopt_nothing({password_reset_token_hash})",
            "password_reset_expires": _utc("password_reset_expires_at"),
            "default_role_id": "{default_role_id}::integer",
            "role_assigned_at": _utc("role_assigned_at"),
            "role_assigned_by": "{role_assigned_by}::integer",
        },
        sentinel="password_hash",
    ),
    TableMap(
        name="user_roles",
        up={
            "user_id": "{user_id}",
            "role_id": "{role_id}",
            "is_primary": "COALESCE({is_primary}, false)",
            "granted_by": "{granted_by}",
            "granted_at": f"COALESCE({_utc('granted_at')}, now())",
            "expires_at": _utc("expires_at"),
        },
        down={
            "user_id": "{user_id}::integer",
            "role_id": "{role_id}::integer",
            "is_primary": "{is_primary}",
            "granted_by": "{granted_by}::integer",
            "granted_at": _utc("granted_at"),
            "expires_at": _utc("expires_at"),
        },
        sentinel="user_id",
        dropped=("id",),
    ),
    TableMap(
        name="user_sessions",
        up={
            "session_id": "{session_id}",
            "user_id": "{user_id}",
            "device_info": "COALESCE({device_info}::jsonb, '{{}}'::jsonb)",
            "ip_address": "_pa_adopt_inet({ip_address})",
            "user_agent": "{user_agent}",
            "created_at": f"COALESCE({_utc('created_at')}, now())",
            "last_seen_at": f"COALESCE({_utc('last_accessed')}, {_utc('created_at')}, now())",
            "expires_at": _utc("expires_at"),
            "is_active": "COALESCE({is_active}, true)",
        },
        down={
            "session_id": "{session_id}",
            "user_id": "{user_id}::integer",
            "device_info": "{device_info}::json",
            "ip_address": "host({ip_address})",
            "user_agent": "{user_agent}",
            "created_at": _utc("created_at"),
            "last_accessed": _utc("last_seen_at"),
            "expires_at": _utc("expires_at"),
            "is_active": "{is_active}",
        },
        sentinel="session_id",
    ),
    TableMap(
        name="auth_tokens",
        up={
            "user_id": "{user_id}",
            "token_hash": "_pa_adopt_sha256({token})",
            "issued_at": f"COALESCE({_utc('created_at')}, now())",
            "expires_at": _utc("expires_at"),
            "revoked": "COALESCE({is_revoked}, false)",
            "token_type": "COALESCE({token_type}, 'refresh')",
            "last_used_at": _utc("last_used_at"),
        },
        down={
            "user_id": "{user_id}::integer",
            # the raw token is not known to the new version: a marker the old one never matches
            "token": "'sha256:' || {token_hash}",
            "token_type": "{token_type}",
            "expires_at": _utc("expires_at"),
            "is_revoked": "{revoked}",
            "created_at": _utc("issued_at"),
            "last_used_at": _utc("last_used_at"),
        },
        sentinel="token_hash",
    ),
    TableMap(
        name="mfa_configurations",
        up={
            "user_id": "{user_id}",
            "totp_secret": "{totp_secret}",
            "totp_enabled": "COALESCE({totp_enabled}, false)",
            "sms_enabled": "COALESCE({sms_enabled}, false)",
            "phone_number": "{phone_number}",
            "backup_codes": "_pa_adopt_hash_codes({backup_codes})",
            "created_at": f"COALESCE({_utc('created_at')}, now())",
            "updated_at": f"COALESCE({_utc('updated_at')}, {_utc('created_at')}, now())",
            "trusted_devices": "COALESCE({trusted_devices}::jsonb, '[]'::jsonb)",
        },
        down={
            "user_id": "{user_id}::integer",
            "totp_secret": "{totp_secret}",
            "totp_enabled": "{totp_enabled}",
            "sms_enabled": "{sms_enabled}",
            "phone_number": "{phone_number}",
            # the plain codes whose hash is still there: a code used up by the new version is gone
            "backup_codes": "_pa_adopt_codes_kept(OLD_backup_codes, {backup_codes})",
            "trusted_devices": "{trusted_devices}::json",
            "created_at": _utc("created_at"),
            "updated_at": _utc("updated_at"),
        },
        sentinel="user_id",
    ),
    TableMap(
        name="security_events",
        up={
            "user_id": "{user_id}",
            "event_type": "{event_type}",
            "severity": "_pa_adopt_severity({severity})",
            "ip_address": "_pa_adopt_inet({ip_address})",
            "user_agent": "{user_agent}",
            "details": "COALESCE({event_data}::jsonb, '{{}}'::jsonb)",
            "occurred_at": f"COALESCE({_utc('created_at')}, now())",
        },
        down={
            "user_id": "{user_id}::integer",
            "event_type": "{event_type}",
            "event_data": "{details}::json",
            "severity": "CASE {severity} WHEN 'medium' THEN 'warning' ELSE {severity} END",
            "ip_address": "host({ip_address})",
            "user_agent": "{user_agent}",
            "created_at": _utc("occurred_at"),
        },
        sentinel="event_type",
    ),
    TableMap(
        name="access_audit_logs",
        up={
            "user_id": "{user_id}",
            "resource": "{resource_type}",
            "action": "{action}",
            "granted": "{permission_granted}",
            "roles_checked": "COALESCE({roles_checked}::text[], '{{}}'::text[])",
            "ip_address": "{ip_address}",
            "occurred_at": f"COALESCE({_utc('created_at')}, now())",
            "resource_id": "{resource_id}",
            "user_agent": "{user_agent}",
        },
        down={
            "user_id": "{user_id}::integer",
            "resource_type": "{resource}",
            "resource_id": "{resource_id}::integer",
            "action": "{action}",
            "permission_granted": "{granted}",
            "roles_checked": "{roles_checked}::varchar[]",
            "ip_address": "{ip_address}",
            "user_agent": "{user_agent}",
            "created_at": _utc("occurred_at"),
        },
        sentinel="resource",
    ),
)
