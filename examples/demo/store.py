"""The demo's queries in SQLAlchemy Core, on the statement API (the fast path).

Each function takes a ``Database`` (each statement on its own, autocommit, one round trip) or a
``Transaction`` (``async with db.transaction() as tx``): the caller decides the transaction.
Nothing here swallows an error: a missing user or role comes back as ``None``/a named
exception, a database failure propagates to the app's error handler.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert

from personal_assistant_db import Database, Transaction

from .tables import access_audit_logs, permissions, role_permissions, roles, user_roles, users

Queries = Database | Transaction


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
    q: Queries, email: str, display_name: str | None, password_hash: str
) -> dict[str, Any] | None:
    """Insert a user; ``None`` when the email is taken (emails are unique case-insensitively)."""
    stmt = (
        insert(users)
        .values(email=email, display_name=display_name, password_hash=password_hash)
        .on_conflict_do_nothing(index_elements=[func.lower(users.c.email)])
        .returning(users.c.id, users.c.email, users.c.display_name, users.c.created_at)
    )
    row = await q.fetch_one(stmt)
    if row is None:
        return None
    return {
        "id": row.id,
        "email": row.email,
        "display_name": row.display_name,
        "created_at": _iso(row.created_at),
    }


async def get_user(q: Queries, user_id: int) -> dict[str, Any] | None:
    """The user with the names of their current roles, or ``None``."""
    row = await q.fetch_one(
        select(users.c.id, users.c.email, users.c.display_name, users.c.created_at).where(
            users.c.id == user_id
        )
    )
    if row is None:
        return None
    return {
        "id": row.id,
        "email": row.email,
        "display_name": row.display_name,
        "created_at": _iso(row.created_at),
        "roles": await current_roles(q, user_id),
    }


async def user_exists(q: Queries, user_id: int) -> bool:
    return bool(await q.fetch_val(select(exists().where(users.c.id == user_id))))


async def current_roles(q: Queries, user_id: int) -> list[str]:
    stmt = (
        select(roles.c.name)
        .join(user_roles, user_roles.c.role_id == roles.c.id)
        .where(
            user_roles.c.user_id == user_id,
            (user_roles.c.expires_at.is_(None)) | (user_roles.c.expires_at > func.now()),
        )
        .order_by(roles.c.name)
    )
    return [str(row.name) for row in await q.fetch_all(stmt)]


async def list_roles(q: Queries) -> list[dict[str, Any]]:
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
        for name, desc, perms in await q.fetch_all(stmt)
    ]


async def grant_role(q: Queries, user_id: int, role: str) -> bool:
    """Grant ``role``; True when newly granted, False when the user already had it."""
    role_id = await q.fetch_val(select(roles.c.id).where(roles.c.name == role))
    if role_id is None:
        raise UnknownRole(role)
    stmt = (
        insert(user_roles)
        .values(user_id=user_id, role_id=role_id)
        .on_conflict_do_nothing(index_elements=[user_roles.c.user_id, user_roles.c.role_id])
        .returning(user_roles.c.user_id)
    )
    return await q.fetch_one(stmt) is not None


async def known_role_names(q: Queries) -> list[str]:
    return [str(r.name) for r in await q.fetch_all(select(roles.c.name).order_by(roles.c.id))]


async def check_permission(
    q: Queries, user_id: int, resource: str, action: str, ip_address: str | None
) -> AccessDecision:
    """Does one of the user's current roles grant ``resource:action``? Recorded in the audit log."""
    held = await current_roles(q, user_id)
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
    via = await q.fetch_val(granting)
    if via is not None:
        decision = AccessDecision(True, held, f"granted by role {via}")
    elif not held:
        decision = AccessDecision(False, held, "user has no roles")
    else:
        decision = AccessDecision(False, held, f"no role of the user grants {resource}:{action}")
    await q.execute(
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


async def list_audit(q: Queries, *, user_id: int | None, limit: int) -> list[dict[str, Any]]:
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
        for r in await q.fetch_all(stmt)
    ]
