"""The new app version's side of an adoption: the legacy app's flows through the package's models.

No tests here. ``NewClient`` does what ``legacy_client.LegacyClient`` does (register with phone
and email, log in, refresh tokens, roles, permission checks, MFA, security events, access audit)
with the package's Core tables (``personal_assistant_db.models``) on the statement API
(``db.fetch_*``, ``db.execute``, ``db.transaction()``), on the package's column names
(``password_hash``, ``last_login_at``, ``failed_login_count``, ``token_hash``, ``revoked``,
``granted``, ``details``, ``occurred_at``). During expand the package's tables are the views in
schema ``pa_adopt`` (docs/adopting.md); the client reaches them with SQLAlchemy's
``schema_translate_map``, so the same tables serve any schema.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from legacy_client import bcrypt_like, check_password, totp, totp_matches

from personal_assistant_db import Database, models


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class NewStats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    flows: int = 0


class NewClient:
    """One app instance of the new version on a started ``Database``."""

    def __init__(self, db: Database, *, schema: str | None = "pa_adopt") -> None:
        self.db = db
        self.options: dict[str, Any] = (
            {"schema_translate_map": {None: schema}} if schema is not None else {}
        )
        self.stats = NewStats()

    def _s(self, statement: Any) -> Any:
        return statement.execution_options(**self.options) if self.options else statement

    async def _timed(self, method: str, statement: Any, params: Any = None) -> Any:
        began = time.perf_counter()
        try:
            return await getattr(self.db, method)(self._s(statement), params)
        except Exception as exc:
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.stats.latencies.append(time.perf_counter() - began)

    async def register(self, email: str, password: str, *, phone: str | None = None) -> int:
        u, r, ur = models.users, models.roles, models.user_roles
        values: dict[str, Any] = {
            "email": email,
            "password_hash": bcrypt_like(password),
            "display_name": email.split("@")[0],
        }
        if phone is not None:
            values["phone_number"] = phone
        user_id = int(await self._timed("fetch_val", sa.insert(u).values(values).returning(u.c.id)))
        role = sa.select(r.c.id).where(r.c.name == "user").scalar_subquery()
        await self._timed(
            "execute", sa.insert(ur).values(user_id=user_id, role_id=role, is_primary=True)
        )
        self.stats.flows += 1
        return user_id

    async def login(self, email: str, password: str) -> int | None:
        u = models.users
        row = await self._timed(
            "fetch_one",
            sa.select(u.c.id, u.c.password_hash).where(u.c.email == email, u.c.is_active),
        )
        if row is None:
            return None
        if not check_password(password, row.password_hash):
            await self._timed(
                "execute",
                sa.update(u)
                .where(u.c.id == row.id)
                .values(failed_login_count=u.c.failed_login_count + 1),
            )
            return None
        await self._timed(
            "execute",
            sa.update(u)
            .where(u.c.id == row.id)
            .values(last_login_at=sa.func.now(), failed_login_count=0),
        )
        self.stats.flows += 1
        return int(row.id)

    async def user(self, user_id: int) -> Any:
        return await self._timed(
            "fetch_one", sa.select(models.users).where(models.users.c.id == user_id)
        )

    async def user_by_email(self, email: str) -> Any:
        return await self._timed(
            "fetch_one", sa.select(models.users).where(models.users.c.email == email)
        )

    async def issue_token(self, user_id: int) -> str:
        t = models.auth_tokens
        token = secrets.token_urlsafe(32)
        await self._timed(
            "execute",
            sa.insert(t).values(
                user_id=user_id,
                token_hash=sha256(token),
                expires_at=datetime.now(UTC) + timedelta(days=30),
            ),
        )
        return token

    async def token_user(self, token: str) -> int | None:
        """The user of a valid token: the app hashes what the client sends and looks the hash up."""
        t = models.auth_tokens
        value = await self._timed(
            "fetch_val",
            sa.select(t.c.user_id).where(
                t.c.token_hash == sha256(token),
                sa.not_(t.c.revoked),
                t.c.expires_at > sa.func.now(),
            ),
        )
        return None if value is None else int(value)

    async def revoke_token(self, token: str) -> bool:
        t = models.auth_tokens
        n = await self._timed(
            "execute",
            sa.update(t)
            .where(t.c.token_hash == sha256(token))
            .values(revoked=True, revoked_at=sa.func.now()),
        )
        return bool(n)

    async def assign_role(self, user_id: int, role: str) -> None:
        r, ur = models.roles, models.user_roles
        await self._timed(
            "execute",
            sa.insert(ur).values(
                user_id=user_id,
                role_id=sa.select(r.c.id).where(r.c.name == role).scalar_subquery(),
                is_primary=False,
            ),
        )

    async def has_permission(self, user_id: int, permission: str) -> bool:
        ur, rp, p = models.user_roles, models.role_permissions, models.permissions
        query = sa.select(
            sa.exists()
            .where(ur.c.user_id == user_id, p.c.name == permission)
            .where(rp.c.role_id == ur.c.role_id, p.c.id == rp.c.permission_id)
            .where(sa.or_(ur.c.expires_at.is_(None), ur.c.expires_at > sa.func.now()))
        )
        return bool(await self._timed("fetch_val", query))

    async def roles_of(self, user_id: int) -> list[str]:
        ur, r = models.user_roles, models.roles
        rows = await self._timed(
            "fetch_all",
            sa.select(r.c.name)
            .join_from(ur, r, r.c.id == ur.c.role_id)
            .where(ur.c.user_id == user_id)
            .order_by(r.c.name),
        )
        return [row.name for row in rows]

    async def setup_mfa(self, user_id: int) -> str:
        m = models.mfa_configurations
        secret = "JBSWY3DPEHPK3PXP" + secrets.token_hex(4).upper().translate(
            str.maketrans("0189", "2345")
        )
        await self._timed(
            "execute",
            sa.insert(m).values(user_id=user_id, totp_secret=secret, totp_enabled=True),
        )
        await self.security_event(user_id, "mfa_totp_enabled")
        return secret

    async def verify_totp(self, user_id: int, code: str) -> bool:
        m = models.mfa_configurations
        secret = await self._timed(
            "fetch_val",
            sa.select(m.c.totp_secret).where(m.c.user_id == user_id, m.c.totp_enabled),
        )
        return secret is not None and totp_matches(secret, code)

    async def security_event(
        self, user_id: int | None, kind: str, severity: str = "info", details: Any = None
    ) -> int:
        e = models.security_events
        return int(
            await self._timed(
                "fetch_val",
                sa.insert(e)
                .values(
                    user_id=user_id,
                    event_type=kind,
                    severity=severity,
                    ip_address="192.0.2.10",
                    user_agent="new-app",
                    details=details if details is not None else {"via": "models"},
                )
                .returning(e.c.id),
            )
        )

    async def events_of(self, user_id: int) -> list[tuple[str, str]]:
        e = models.security_events
        rows = await self._timed(
            "fetch_all",
            sa.select(e.c.event_type, e.c.severity).where(e.c.user_id == user_id).order_by(e.c.id),
        )
        return [(row.event_type, row.severity) for row in rows]

    async def audit(self, user_id: int, resource: str, action: str, granted: bool) -> int:
        a = models.access_audit_logs
        return int(
            await self._timed(
                "fetch_val",
                sa.insert(a)
                .values(
                    user_id=user_id,
                    resource=resource,
                    action=action,
                    granted=granted,
                    roles_checked=["user"],
                    ip_address="192.0.2.10",
                )
                .returning(a.c.id),
            )
        )

    async def session(self, tag: str) -> int:
        """Register, log in, token issue/use/revoke, role, permission, MFA, audit: one user."""
        email = f"{tag}@new.example"
        user_id = await self.register(
            email, "pw-" + tag, phone=f"+49{secrets.randbelow(10**12):012d}"
        )
        assert await self.login(email, "wrong") is None
        assert await self.login(email, "pw-" + tag) == user_id
        token = await self.issue_token(user_id)
        assert await self.token_user(token) == user_id
        assert await self.revoke_token(token)
        assert await self.token_user(token) is None
        await self.assign_role(user_id, "premium")
        assert await self.has_permission(user_id, "memory:delete")
        secret = await self.setup_mfa(user_id)
        assert await self.verify_totp(user_id, totp(secret))
        await self.audit(user_id, "memory", "delete", True)
        await self.security_event(user_id, "login_success")
        return user_id
