"""Helpers shared by the adoption tests (no tests here): the CLI, checksums, and the column
mapping of docs/adopting.md written out again in Python, independently of the package's SQL.

``expected_view_rows(data)`` says, for a drawn legacy dataset, what every column of the
package's tables (the ``pa_adopt`` views during expand) must hold; ``ANY_TIME`` marks the columns
that a NULL legacy timestamp leaves to ``now()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import structlog
from legacy_data import Rows
from psycopg.rows import dict_row
from psycopg.types.json import Json

VIEWS = "pa_adopt"


class _AnyTime:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, datetime) and other.tzinfo is not None

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<any aware timestamp>"


ANY_TIME = _AnyTime()


def pa_db(*args: str, url: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``pa-db migrate ARGS`` as an operator runs it, on ``url`` (DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(*args: str, url: str) -> tuple[int, str, str]:
    """``pa-db migrate ARGS --database URL`` in this process (a subprocess costs ~6 s of imports
    on a loaded 2-core machine): (exit code, stdout, stderr). The CLI configures structlog for
    itself; the test process's configuration is put back afterwards."""
    from personal_assistant_db.cli import main

    saved = structlog.get_config()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["migrate", *args, "--database", url])
    finally:
        structlog.configure(**saved)
    return code, out.getvalue(), err.getvalue()


def rows_of(url: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query.encode()).fetchall()


def catalog_objects(url: str) -> list[tuple[str, ...]]:
    """Every schema, table, column, index, constraint, trigger, view and function outside the
    system schemas and yoyo's bookkeeping: what a rollback must give back exactly."""
    q = """
    SELECT 'schema', nspname, '', '' FROM pg_namespace
     WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
    UNION ALL
    SELECT 'column', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
          || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
          || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0 AND NOT a.attisdropped
       AND c.relname NOT LIKE '%yoyo%' AND c.relname NOT LIKE '\\_pa\\_db%'
    UNION ALL
    SELECT 'index', c.relname, pg_get_indexdef(c.oid), '' FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'i' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND c.relname NOT LIKE '%yoyo%' AND c.relname NOT LIKE '\\_pa\\_db%'
    UNION ALL
    SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
      FROM pg_constraint
     WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
       AND conrelid::regclass::text NOT LIKE '%yoyo%'
       AND conrelid::regclass::text NOT LIKE '\\_pa\\_db%'
    UNION ALL
    SELECT 'trigger', tgrelid::regclass::text, tgname, '' FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, '', '' FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT 'sequence', c.relname, '', '' FROM pg_class c WHERE c.relkind = 'S'
       AND c.relname NOT LIKE '%yoyo%'
    ORDER BY 1, 2, 3, 4
    """
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(q.encode()).fetchall()]


# --- the mapping, in Python -----------------------------------------------------------------
def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _utc_or_now(*values: datetime | None) -> Any:
    for value in values:
        if value is not None:
            return value.replace(tzinfo=UTC)
    return ANY_TIME


def _sha(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


_IPV4 = re.compile(
    r"^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$"
)


def _inet(value: str | None) -> Any:
    """A legacy VARCHAR ip_address that is an address stays one; anything else is NULL."""
    if value is None:
        return None
    if _IPV4.match(value) or (":" in value and re.fullmatch(r"[0-9A-Fa-f:.]+", value)):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            return None
    return None


def _unjson(value: Any) -> Any:
    return value.obj if isinstance(value, Json) else value


def _numbers(value: Any) -> Any:
    """JSON numbers as Decimals: jsonb keeps numbers as numeric (1.5e300 comes back as the integer
    15 followed by 299 zeros, -0.0 as 0.0), equal in value but not as Python floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


def _jsonb(value: Any, default: Any) -> Any:
    """json -> jsonb: SQL NULL takes the default; JSON ``null`` stays JSON null (None here)."""
    if value is None:
        return _numbers(default)
    return _numbers(json.loads(json.dumps(_unjson(value))))


def _severity(value: str | None) -> str:
    if value in ("info", "low", "medium", "high", "critical"):
        return value
    return "medium" if value == "warning" else "info"


def _codes(value: Any) -> list[str]:
    codes = _unjson(value)
    return [_sha(str(c)) or "" for c in codes] if isinstance(codes, list) else []


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


Spec = dict[str, Callable[[dict[str, Any]], Any]]

SPEC: dict[str, Spec] = {
    "users": {
        "email": lambda r: r["email"],
        "display_name": lambda r: r["full_name"],
        "password_hash": lambda r: r["hashed_password"],
        "is_active": lambda r: _or(r["is_active"], True),
        "is_verified": lambda r: _or(r["is_verified"], False),
        "failed_login_count": lambda r: _or(r["failed_login_attempts"], 0),
        "locked_until": lambda r: _utc(r["locked_until"]),
        "last_login_at": lambda r: _utc(r["last_login"]),
        "created_at": lambda r: _utc_or_now(r["created_at"]),
        "updated_at": lambda r: _utc_or_now(r["updated_at"], r["created_at"]),
        "phone_number": lambda r: r["phone_number"],
        "verification_token_hash": lambda r: _sha(r["verification_token"]),
        "password_reset_token_hash": lambda r: _sha(r["password_reset_token"]),
        "password_reset_expires_at": lambda r: _utc(r["password_reset_expires"]),
        "default_role_id": lambda r: r["default_role_id"],
        "role_assigned_at": lambda r: _utc(r["role_assigned_at"]),
        "role_assigned_by": lambda r: r["role_assigned_by"],
    },
    "roles": {
        "name": lambda r: r["name"],
        "description": lambda r: _or(r["description"], ""),
        "parent_role_id": lambda r: r["parent_role_id"],
        "created_at": lambda r: _utc_or_now(r["created_at"]),
        "updated_at": lambda r: _utc_or_now(r["updated_at"], r["created_at"]),
    },
    "user_sessions": {
        "session_id": lambda r: r["session_id"],
        "user_id": lambda r: r["user_id"],
        "device_info": lambda r: _jsonb(r["device_info"], {}),
        "ip_address": lambda r: _inet(r["ip_address"]),
        "user_agent": lambda r: r["user_agent"],
        "created_at": lambda r: _utc_or_now(r["created_at"]),
        "last_seen_at": lambda r: _utc_or_now(r["last_accessed"], r["created_at"]),
        "expires_at": lambda r: _utc(r["expires_at"]),
        "is_active": lambda r: _or(r["is_active"], True),
    },
    "auth_tokens": {
        "user_id": lambda r: r["user_id"],
        "token_hash": lambda r: _sha(r["token"]),
        "issued_at": lambda r: _utc_or_now(r["created_at"]),
        "expires_at": lambda r: _utc(r["expires_at"]),
        "revoked": lambda r: _or(r["is_revoked"], False),
        "token_type": lambda r: _or(r["token_type"], "refresh"),
        "last_used_at": lambda r: _utc(r["last_used_at"]),
    },
    "mfa_configurations": {
        "user_id": lambda r: r["user_id"],
        "totp_secret": lambda r: r["totp_secret"],
        "totp_enabled": lambda r: _or(r["totp_enabled"], False),
        "sms_enabled": lambda r: _or(r["sms_enabled"], False),
        "phone_number": lambda r: r["phone_number"],
        "backup_codes": lambda r: _codes(r["backup_codes"]),
        "trusted_devices": lambda r: _jsonb(r["trusted_devices"], []),
        "created_at": lambda r: _utc_or_now(r["created_at"]),
        "updated_at": lambda r: _utc_or_now(r["updated_at"], r["created_at"]),
    },
    "security_events": {
        "user_id": lambda r: r["user_id"],
        "event_type": lambda r: r["event_type"],
        "severity": lambda r: _severity(r["severity"]),
        "ip_address": lambda r: _inet(r["ip_address"]),
        "user_agent": lambda r: r["user_agent"],
        "details": lambda r: _jsonb(r["event_data"], {}),
        "occurred_at": lambda r: _utc_or_now(r["created_at"]),
    },
    "access_audit_logs": {
        "user_id": lambda r: r["user_id"],
        "resource": lambda r: r["resource_type"],
        "action": lambda r: r["action"],
        "granted": lambda r: r["permission_granted"],
        "roles_checked": lambda r: _or(r["roles_checked"], []),
        "ip_address": lambda r: (
            None if r["ip_address"] is None else ipaddress.ip_interface(r["ip_address"])
        ),
        "resource_id": lambda r: r["resource_id"],
        "user_agent": lambda r: r["user_agent"],
        "occurred_at": lambda r: _utc_or_now(r["created_at"]),
    },
}
# Tables without their own id in the package: compared as multisets of (column values).
PAIR_SPEC: dict[str, Spec] = {
    "user_roles": {
        "user_id": lambda r: r["user_id"],
        "role_id": lambda r: r["role_id"],
        "is_primary": lambda r: _or(r["is_primary"], False),
        "granted_by": lambda r: r["granted_by"],
        "granted_at": lambda r: _utc_or_now(r["granted_at"]),
        "expires_at": lambda r: _utc(r["expires_at"]),
    },
}


def _normal(value: Any) -> Any:
    """psycopg's inet comes back as an address or an interface; compare addresses as interfaces."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ipaddress.ip_interface(value)
    if isinstance(value, dict | list):
        return _numbers(value)
    return value


def mapping_differences(url: str, data: Rows) -> list[str]:
    """Every (table, key, column) whose value in the package's view differs from the mapping."""
    problems: list[str] = []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for table, spec in SPEC.items():
            legacy = data.get(table, [])
            got = {
                r["id"]: r
                for r in conn.execute(f'SELECT * FROM {VIEWS}."{table}"'.encode()).fetchall()
            }
            for row in legacy:
                view_row = got.get(row["id"])
                if view_row is None:
                    problems.append(f"{table} id={row['id']}: missing from {VIEWS}.{table}")
                    continue
                for column, up in spec.items():
                    want, have = _normal(up(row)), _normal(view_row.get(column, "<no column>"))
                    if want != have:
                        problems.append(
                            f"{table} id={row['id']} {column}: want {want!r}, got {have!r}"
                        )
        for table, spec in PAIR_SPEC.items():
            got_rows = conn.execute(f'SELECT * FROM {VIEWS}."{table}"'.encode()).fetchall()
            legacy = data.get(table, [])
            if len(got_rows) != len(legacy):
                problems.append(f"{table}: {len(legacy)} legacy rows, {len(got_rows)} in the view")
            for row in data.get(table, []):
                match = [
                    g
                    for g in got_rows
                    if all(_normal(up(row)) == _normal(g[c]) for c, up in spec.items())
                ]
                if not match:
                    problems.append(
                        f"{table} legacy id={row['id']}: no view row matches the mapping"
                    )
    return problems
