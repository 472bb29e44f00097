"""The demo's queries in SQLAlchemy Core, on the host's one engine (db.connect / db.begin).

Each function takes a connection, so the caller decides the transaction. Nothing here swallows
an error: a missing user or role comes back as ``None``/a named exception, a database failure
propagates to the app's error handler.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import access_audit_logs, permissions, role_permissions, roles, user_roles, users


class UnknownRole(LookupError):
    """The role name is not in ``roles``."""


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    roles_checked: list[str]
    reason: str


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def create_user(
    conn: AsyncConnection, email: str, display_name: str | None, password_hash: str
) -> dict[str, Any] | None:
    """Insert a user; ``None`` when the email is taken (emails are unique case-insensitively)."""
    stmt = (
        insert(users)
        .values(email=email, display_name=display_name, password_hash=password_hash)
        .on_conflict_do_nothing(index_elements=[func.lower(users.c.email)])
        .returning(users.c.id, users.c.email, users.c.display_name, users.c.created_at)
    )
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        return None
    return {
        "id": row.id,
        "email": row.email,
        "display_name": row.display_name,
        "created_at": _iso(row.created_at),
    }


async def get_user(conn: AsyncConnection, user_id: int) -> dict[str, Any] | None:
    """The user with the names of their current roles, or ``None``."""
    row = (
        await conn.execute(
            select(users.c.id, users.c.email, users.c.display_name, users.c.created_at).where(
                users.c.id == user_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return {
        "id": row.id,
        "email": row.email,
        "display_name": row.display_name,
        "created_at": _iso(row.created_at),
        "roles": await current_roles(conn, user_id),
    }


async def user_exists(conn: AsyncConnection, user_id: int) -> bool:
    return bool((await conn.execute(select(exists().where(users.c.id == user_id)))).scalar())


async def current_roles(conn: AsyncConnection, user_id: int) -> list[str]:
    stmt = (
        select(roles.c.name)
        .join(user_roles, user_roles.c.role_id == roles.c.id)
        .where(
            user_roles.c.user_id == user_id,
            (user_roles.c.expires_at.is_(None)) | (user_roles.c.expires_at > func.now()),
        )
        .order_by(roles.c.name)
    )
    return [str(name) for name in (await conn.execute(stmt)).scalars()]


async def list_roles(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every role with the permissions it grants."""
    stmt = (
        select(roles.c.name, roles.c.description, func.array_agg(permissions.c.name))
        .join(role_permissions, role_permissions.c.role_id == roles.c.id, isouter=True)
        .join(permissions, permissions.c.id == role_permissions.c.permission_id, isouter=True)
        .group_by(roles.c.id)
        .order_by(roles.c.id)
    )
    return [
        {"name": name, "description": desc, "permissions": sorted(p for p in perms if p)}
        for name, desc, perms in (await conn.execute(stmt)).all()
    ]


async def grant_role(conn: AsyncConnection, user_id: int, role: str) -> bool:
    """Grant ``role``; True when newly granted, False when the user already had it."""
    role_id = (await conn.execute(select(roles.c.id).where(roles.c.name == role))).scalar()
    if role_id is None:
        raise UnknownRole(role)
    stmt = (
        insert(user_roles)
        .values(user_id=user_id, role_id=role_id)
        .on_conflict_do_nothing(index_elements=[user_roles.c.user_id, user_roles.c.role_id])
        .returning(user_roles.c.user_id)
    )
    return (await conn.execute(stmt)).one_or_none() is not None


async def known_role_names(conn: AsyncConnection) -> list[str]:
    return [
        str(n) for n in (await conn.execute(select(roles.c.name).order_by(roles.c.id))).scalars()
    ]


async def check_permission(
    conn: AsyncConnection, user_id: int, resource: str, action: str, ip_address: str | None
) -> AccessDecision:
    """Does one of the user's current roles grant ``resource:action``? Recorded in the audit log."""
    held = await current_roles(conn, user_id)
    granting = (
        select(roles.c.name)
        .join(user_roles, user_roles.c.role_id == roles.c.id)
        .join(role_permissions, role_permissions.c.role_id == roles.c.id)
        .join(permissions, permissions.c.id == role_permissions.c.permission_id)
        .where(
            user_roles.c.user_id == user_id,
            (user_roles.c.expires_at.is_(None)) | (user_roles.c.expires_at > func.now()),
            permissions.c.resource == resource,
            permissions.c.action == action,
        )
        .order_by(roles.c.name)
        .limit(1)
    )
    via = (await conn.execute(granting)).scalar()
    if via is not None:
        decision = AccessDecision(True, held, f"granted by role {via}")
    elif not held:
        decision = AccessDecision(False, held, "user has no roles")
    else:
        decision = AccessDecision(False, held, f"no role of the user grants {resource}:{action}")
    await conn.execute(
        access_audit_logs.insert().values(
            user_id=user_id,
            resource=resource,
            action=action,
            granted=decision.allowed,
            roles_checked=held,
            reason=decision.reason,
            ip_address=ip_address,
        )
    )
    return decision


async def list_audit(
    conn: AsyncConnection, *, user_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """The newest access-audit rows first, optionally for one user."""
    t = access_audit_logs
    stmt = (
        select(t.c.id, t.c.user_id, t.c.resource, t.c.action, t.c.granted)
        .add_columns(t.c.roles_checked, t.c.reason, t.c.ip_address, t.c.occurred_at)
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    if user_id is not None:
        stmt = stmt.where(t.c.user_id == user_id)
    return [
        {
            "id": r.id,
            "user_id": r.user_id,
            "permission": f"{r.resource}:{r.action}",
            "granted": r.granted,
            "roles_checked": list(r.roles_checked),
            "reason": r.reason,
            "ip_address": None if r.ip_address is None else str(r.ip_address),
            "occurred_at": _iso(r.occurred_at),
        }
        for r in (await conn.execute(stmt)).all()
    ]
