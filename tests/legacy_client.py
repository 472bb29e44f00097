"""The legacy ai_assistant app's database side, written from its DDL (the package vendors it as
``personal_assistant_db/migrate/adoption/legacy.sql``, for recognition; the tests use that copy).

No tests here. ``LegacyClient`` does what that app does, with plain SQL on the *legacy* columns
only (``hashed_password``, ``phone_number``, ``last_login``, ``failed_login_attempts``, the raw
``auth_tokens.token``, ``user_roles.id``, JSON ``backup_codes``, naive UTC timestamps written
with ``datetime.utcnow()``): register, log in, refresh tokens, roles and permission checks, MFA,
security events and access audit rows. Every flow is one transaction, as the app's ORM session
commits it. It is synchronous (psycopg), as the app's SQLAlchemy session is, so it runs in a
thread beside an adoption or the package's async models, and it records each statement's latency
(what ``bench/adopt.py`` reports as the longest wait) and each error.

``create_legacy(url)`` builds the layout and the app's RBAC seed in an empty database;
``fill_legacy(url, users=..., events=...)`` bulk-loads it with ``INSERT ... SELECT
generate_series`` (about a million rows per ten seconds here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json

# The package vendors the legacy DDL for recognition (migrate/adoption/legacy.sql); build on it.
LEGACY_SQL = next(
    (Path(__file__).resolve().parent.parent / "personal_assistant_db").rglob("legacy.sql")
)

LEGACY_TABLES = (
    "roles",
    "permissions",
    "role_permissions",
    "users",
    "user_roles",
    "user_sessions",
    "auth_tokens",
    "mfa_configurations",
    "security_events",
    "access_audit_logs",
)

RESOURCES = ("user", "memory", "task", "note", "event")
# The app's RBAC script: 21 permissions, three roles, these grants.
PERMISSIONS = [f"{r}:{a}" for r in RESOURCES for a in ("read", "write", "delete")] + [
    f"{r}:{a}" for r in ("system", "rbac") for a in ("read", "write", "admin")
]
GRANTS = {
    "user": [f"{r}:{a}" for r in RESOURCES for a in ("read", "write")],
    "premium": ["user:read", "user:write", "system:read"]
    + [f"{r}:{a}" for r in RESOURCES[1:] for a in ("read", "write", "delete")],
    "administrator": list(PERMISSIONS),
}
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def utcnow() -> datetime:
    """What the app writes: ``datetime.utcnow()``, a naive UTC timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def bcrypt_like(password: str, salt: str | None = None) -> str:
    """A string shaped like a bcrypt hash (``$2b$12$`` + 22 salt + 31 digest characters).

    Not bcrypt (no cost): deterministic for a salt, so ``check_password`` can verify it.
    """
    salt = salt or "".join(secrets.choice(_BCRYPT_ALPHABET) for _ in range(22))
    digest = hashlib.sha256((salt + password).encode()).digest()
    tail = "".join(_BCRYPT_ALPHABET[b % 64] for b in digest)[:31]
    return f"$2b$12${salt}{tail}"


def check_password(password: str, hashed: str) -> bool:
    return hmac.compare_digest(bcrypt_like(password, hashed[7:29]), hashed)


def totp(secret: str, at: float | None = None, step: int = 30) -> str:
    """RFC 6238 TOTP (SHA-1, 6 digits), what the user's authenticator app shows."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def totp_matches(secret: str, code: str) -> bool:
    """The code of this 30 s step or the previous one, as authenticator servers accept (a code
    read just before a step boundary is checked just after it)."""
    now = time.time()
    return any(hmac.compare_digest(totp(secret, at), code) for at in (now, now - 30))


def create_legacy(url: str) -> None:
    """The legacy layout plus the app's RBAC seed (3 roles, 21 permissions, their grants)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY_SQL.read_text().encode())
        now = utcnow()
        for role in GRANTS:
            conn.execute(
                "INSERT INTO roles (name, description, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s)",
                (role, None if role == "user" else f"{role} role", now, now),
            )
        for name in PERMISSIONS:
            resource, action = name.split(":")
            conn.execute(
                "INSERT INTO permissions (name, resource_type, action, description, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (name, resource, action, f"{action} {resource}", now),
            )
        for role, names in GRANTS.items():
            conn.execute(
                "INSERT INTO role_permissions (role_id, permission_id, created_at)"
                " SELECT r.id, p.id, %s FROM roles r, permissions p"
                " WHERE r.name = %s AND p.name = ANY(%s) ORDER BY p.id",
                (now, role, names),
            )


def fill_legacy(url: str, *, users: int, events: int, start: int = 1) -> None:
    """Bulk legacy rows: ``users`` users (every third with a phone, every fifth with MFA, one
    refresh token and one 'user' role each) and ``events`` security events spread over them.
    Fast (set-based); the ids are ``start`` .. ``start + users - 1``."""
    stop = start + users - 1
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO users (id, email, phone_number, full_name, hashed_password, is_active,"
            " is_verified, last_login, failed_login_attempts, created_at, updated_at)"
            " SELECT g, 'user' || g || '@example.org',"
            " CASE WHEN g %% 3 = 0 THEN '+1555' || lpad(g::text, 10, '0') END,"
            " 'User ' || g, '$2b$12$' || md5(g::text) || 'abcdefghijklmnopqrstu', true,"
            " g %% 2 = 0, timestamp '2024-03-31 00:30' + g * interval '1 second', g %% 4,"
            " timestamp '2023-01-01' + g * interval '1 second', NULL"
            " FROM generate_series(%s::int, %s::int) g",
            (start, stop),
        )
        conn.execute("SELECT setval('users_id_seq', (SELECT max(id) FROM users))")
        conn.execute(
            "INSERT INTO auth_tokens (user_id, token, token_type, expires_at, is_revoked,"
            " created_at) SELECT g, 'rt-' || md5(g::text || 'refresh'), 'refresh',"
            " timestamp '2030-01-01', g %% 7 = 0, timestamp '2024-01-01'"
            " FROM generate_series(%s::int, %s::int) g",
            (start, stop),
        )
        conn.execute(
            "INSERT INTO user_roles (user_id, role_id, is_primary, granted_at)"
            " SELECT g, (SELECT id FROM roles WHERE name = 'user'), true, timestamp '2024-01-01'"
            " FROM generate_series(%s::int, %s::int) g",
            (start, stop),
        )
        conn.execute(
            "INSERT INTO mfa_configurations (user_id, totp_secret, totp_enabled, sms_enabled,"
            " backup_codes, trusted_devices, created_at)"
            " SELECT g, 'JBSWY3DPEHPK3PXP', true, false,"
            " json_build_array(lpad(g::text, 8, '0'), lpad((g + 1)::text, 8, '0')), '[]'::json,"
            " timestamp '2024-01-01' FROM generate_series(%s::int, %s::int) g WHERE g %% 5 = 0",
            (start, stop),
        )
        conn.execute(
            "INSERT INTO security_events (user_id, event_type, event_data, severity, ip_address,"
            " user_agent, created_at)"
            " SELECT %s + (g %% %s), CASE WHEN g %% 2 = 0 THEN 'login_success' ELSE"
            " 'mfa_totp_enabled' END, json_build_object('n', g),"
            " CASE WHEN g %% 10 = 0 THEN 'warning' ELSE 'info' END,"
            " CASE WHEN g %% 3 = 0 THEN 'testclient' ELSE '192.0.2.' || (g %% 250) END,"
            " 'pytest', timestamp '2024-10-27 00:00' + (g %% 7200) * interval '1 second'"
            " FROM generate_series(1, %s::int) g",
            (start, users, events),
        )
        for table in LEGACY_TABLES:
            conn.execute(f"ANALYZE {table}")


@dataclass
class Stats:
    """Per-statement latencies (seconds) and errors of one client, safe across threads."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    flows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def longest(self) -> float:
        return max(self.latencies, default=0.0)


class LegacyClient:
    """One connection of the legacy app. Each public method is one committed flow."""

    def __init__(self, url: str, *, stats: Stats | None = None) -> None:
        self.conn = psycopg.connect(url, application_name="ai_assistant-legacy")
        self.stats = stats or Stats()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LegacyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _q(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        began = time.perf_counter()
        cur = self.conn.execute(sql.encode() if params is None else sql, params)
        rows = cur.fetchall() if cur.description else []
        with self.stats.lock:
            self.stats.latencies.append(time.perf_counter() - began)
        return rows

    @contextmanager
    def _flow(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                yield
        except Exception as exc:
            with self.stats.lock:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        with self.stats.lock:
            self.stats.flows += 1

    # --- accounts --------------------------------------------------------------------------
    def register(self, email: str, password: str, *, phone: str | None = None) -> int:
        now = utcnow()
        with self._flow():
            rows = self._q(
                "INSERT INTO users (email, phone_number, full_name, hashed_password, is_active,"
                " is_verified, verification_token, failed_login_attempts, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, true, false, %s, 0, %s, %s) RETURNING id",
                (
                    email,
                    phone,
                    email.split("@")[0],
                    bcrypt_like(password),
                    secrets.token_urlsafe(24),
                    now,
                    now,
                ),
            )
            user_id = int(rows[0][0])
            self._q(
                "INSERT INTO user_roles (user_id, role_id, is_primary, granted_at)"
                " SELECT %s, id, true, %s FROM roles WHERE name = 'user'",
                (user_id, now),
            )
            self._q(
                "UPDATE users SET default_role_id = (SELECT id FROM roles WHERE name = 'user'),"
                " role_assigned_at = %s WHERE id = %s",
                (now, user_id),
            )
        return user_id

    def login(self, email: str, password: str) -> int | None:
        """The user's id on success (last_login set, failures reset), else None (counted)."""
        with self._flow():
            rows = self._q(
                "SELECT id, hashed_password, locked_until FROM users"
                " WHERE email = %s AND is_active",
                (email,),
            )
            if not rows:
                return None
            user_id, hashed, locked_until = rows[0]
            now = utcnow()
            if locked_until is not None and locked_until > now:
                return None
            if not check_password(password, hashed):
                self._q(
                    "UPDATE users SET failed_login_attempts = coalesce(failed_login_attempts, 0)"
                    " + 1, updated_at = %s WHERE id = %s",
                    (now, user_id),
                )
                return None
            self._q(
                "UPDATE users SET last_login = %s, failed_login_attempts = 0, updated_at = %s"
                " WHERE id = %s",
                (now, now, user_id),
            )
            return int(user_id)

    def user(self, user_id: int) -> dict[str, Any] | None:
        with self._flow():
            cur = self.conn.execute(
                "SELECT id, email, phone_number, full_name, hashed_password, last_login,"
                " failed_login_attempts, is_active FROM users WHERE id = %s",
                (user_id,),
            )
            assert cur.description is not None
            names = [c.name for c in cur.description]
            row = cur.fetchone()
        return dict(zip(names, row, strict=True)) if row else None

    # --- tokens ----------------------------------------------------------------------------
    def issue_token(self, user_id: int, token_type: str = "refresh") -> str:  # noqa: S107
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self._flow():
            self._q(
                "INSERT INTO auth_tokens (user_id, token, token_type, expires_at, is_revoked,"
                " created_at) VALUES (%s, %s, %s, %s, false, %s)",
                (user_id, token, token_type, now + timedelta(days=30), now),
            )
        return token

    def token_user(self, token: str) -> int | None:
        """The user a valid (unrevoked, unexpired) token belongs to; last_used_at is stamped."""
        with self._flow():
            rows = self._q(
                "UPDATE auth_tokens SET last_used_at = %s WHERE token = %s AND NOT is_revoked"
                " AND expires_at > %s RETURNING user_id",
                (utcnow(), token, utcnow()),
            )
        return int(rows[0][0]) if rows else None

    def revoke_token(self, token: str) -> bool:
        with self._flow():
            rows = self._q(
                "UPDATE auth_tokens SET is_revoked = true WHERE token = %s RETURNING id", (token,)
            )
        return bool(rows)

    # --- RBAC ------------------------------------------------------------------------------
    def assign_role(
        self, user_id: int, role: str, *, primary: bool = False, by: int | None = None
    ) -> int:
        """The new user_roles.id (the legacy table's own serial)."""
        now = utcnow()
        with self._flow():
            rows = self._q(
                "INSERT INTO user_roles (user_id, role_id, is_primary, granted_by, granted_at)"
                " SELECT %s, id, %s, %s, %s FROM roles WHERE name = %s RETURNING id",
                (user_id, primary, by, now, role),
            )
            if primary:
                self._q(
                    "UPDATE users SET default_role_id = (SELECT id FROM roles WHERE name = %s),"
                    " role_assigned_at = %s, role_assigned_by = %s WHERE id = %s",
                    (role, now, by, user_id),
                )
        return int(rows[0][0])

    def has_permission(self, user_id: int, permission: str) -> bool:
        with self._flow():
            rows = self._q(
                "SELECT EXISTS (SELECT 1 FROM user_roles ur"
                " JOIN role_permissions rp ON rp.role_id = ur.role_id"
                " JOIN permissions p ON p.id = rp.permission_id"
                " WHERE ur.user_id = %s AND p.name = %s"
                " AND (ur.expires_at IS NULL OR ur.expires_at > %s))",
                (user_id, permission, utcnow()),
            )
        return bool(rows[0][0])

    def roles_of(self, user_id: int) -> list[str]:
        with self._flow():
            rows = self._q(
                "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
                " WHERE ur.user_id = %s ORDER BY r.name",
                (user_id,),
            )
        return [r[0] for r in rows]

    # --- MFA -------------------------------------------------------------------------------
    def setup_mfa(self, user_id: int) -> tuple[str, list[str]]:
        secret = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
        codes = [f"{secrets.randbelow(10**8):08d}" for _ in range(8)]
        now = utcnow()
        with self._flow():
            self._q(
                "INSERT INTO mfa_configurations (user_id, totp_secret, totp_enabled, sms_enabled,"
                " backup_codes, trusted_devices, created_at, updated_at)"
                " VALUES (%s, %s, true, false, %s, %s, %s, %s)",
                (user_id, secret, Json(codes), Json([]), now, now),
            )
            self._event(user_id, "mfa_totp_enabled", "info", {"method": "totp"})
        return secret, codes

    def verify_totp(self, user_id: int, code: str) -> bool:
        with self._flow():
            rows = self._q(
                "SELECT totp_secret FROM mfa_configurations WHERE user_id = %s AND totp_enabled",
                (user_id,),
            )
        return bool(rows) and rows[0][0] is not None and totp_matches(rows[0][0], code)

    def use_backup_code(self, user_id: int, code: str) -> bool:
        """True once per unused code: the code leaves the JSON list, an event is written."""
        with self._flow():
            rows = self._q(
                "SELECT backup_codes FROM mfa_configurations WHERE user_id = %s FOR UPDATE",
                (user_id,),
            )
            codes = list(rows[0][0] or []) if rows else []
            if code not in codes:
                return False
            codes.remove(code)
            self._q(
                "UPDATE mfa_configurations SET backup_codes = %s, updated_at = %s"
                " WHERE user_id = %s",
                (Json(codes), utcnow(), user_id),
            )
            self._event(user_id, "mfa_backup_code_used", "warning", {"left": len(codes)})
        return True

    # --- audit -----------------------------------------------------------------------------
    def _event(self, user_id: int | None, kind: str, severity: str, data: Any) -> int:
        rows = self._q(
            "INSERT INTO security_events (user_id, event_type, event_data, severity, ip_address,"
            " user_agent, created_at) VALUES (%s, %s, %s, %s, 'testclient', 'testclient', %s)"
            " RETURNING id",
            (user_id, kind, Json(data), severity, utcnow()),
        )
        return int(rows[0][0])

    def security_event(
        self, user_id: int | None, kind: str, severity: str = "info", data: Any = None
    ) -> int:
        with self._flow():
            return self._event(user_id, kind, severity, data if data is not None else {})

    def audit(self, user_id: int, resource: str, action: str, granted: bool) -> int:
        with self._flow():
            rows = self._q(
                "INSERT INTO access_audit_logs (user_id, resource_type, resource_id, action,"
                " permission_granted, roles_checked, ip_address, user_agent, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'testclient', %s) RETURNING id",
                (user_id, resource, 7, action, granted, ["user"], "127.0.0.1", utcnow()),
            )
        return int(rows[0][0])

    def events_of(self, user_id: int) -> list[tuple[str, str]]:
        with self._flow():
            rows = self._q(
                "SELECT event_type, severity FROM security_events WHERE user_id = %s ORDER BY id",
                (user_id,),
            )
        return [(r[0], r[1]) for r in rows]

    # --- one whole visit -------------------------------------------------------------------
    def session(self, tag: str) -> int:
        """Register, log in, token issue/use/revoke, role, permission, MFA, audit: one user."""
        email = f"{tag}@legacy.example"
        user_id = self.register(email, "pw-" + tag, phone=f"+44{secrets.randbelow(10**12):012d}")
        assert self.login(email, "wrong") is None
        assert self.login(email, "pw-" + tag) == user_id
        token = self.issue_token(user_id)
        assert self.token_user(token) == user_id
        assert self.revoke_token(token)
        assert self.token_user(token) is None
        self.assign_role(user_id, "premium")
        assert self.has_permission(user_id, "memory:delete")
        secret, codes = self.setup_mfa(user_id)
        assert self.verify_totp(user_id, totp(secret))
        assert self.use_backup_code(user_id, codes[0])
        assert not self.use_backup_code(user_id, codes[0])
        self.audit(user_id, "memory", "delete", True)
        self.security_event(user_id, "login_success")
        return user_id


class LegacyLoad:
    """``threads`` legacy app connections, each running whole visits until stopped."""

    def __init__(self, url: str, threads: int = 2, prefix: str = "legacy") -> None:
        self.url, self.stats, self.stop = url, Stats(), threading.Event()
        self.users: list[int] = []
        self.threads = [
            threading.Thread(target=self._run, args=(f"{prefix}{n}",), daemon=True)
            for n in range(threads)
        ]

    def _run(self, tag: str) -> None:
        with LegacyClient(self.url, stats=self.stats) as client:
            n = 0
            while not self.stop.is_set():
                try:
                    self.users.append(client.session(f"{tag}-{n}"))
                except psycopg.Error:
                    pass  # already recorded by the flow that failed
                except Exception as exc:  # a flow's own check failed: recorded too, with where
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    with self.stats.lock:
                        self.stats.errors.append(
                            f"{type(exc).__name__}: {exc} at line {where.lineno}: {where.line}"
                        )
                n += 1

    def __enter__(self) -> LegacyLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
