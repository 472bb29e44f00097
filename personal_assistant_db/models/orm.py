"""ORM classes mapped onto the Core tables (hybrid declarative: ``__table__`` is the Core table).

There is one table definition (auth.py, rbac.py, audit.py); each class maps onto it, so the
ORM and Core can never disagree, and a ``schema_translate_map`` reaches both. The
``Mapped[...]`` annotations type the attributes for mypy and editors; the columns come from the
table. Values that the server fills
(identity ids, ``DEFAULT now()``, the generated ``Permission.name``) are read back after a flush.

No relationships are declared: they are the app's choice of loading strategy. Join on the
foreign keys, or add ``relationship()``s in a subclass of your own.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, TypeAlias

from sqlalchemy.orm import DeclarativeBase, Mapped

from .audit import access_audit_logs, security_events
from .auth import auth_tokens, mfa_configurations, user_sessions, users
from .metadata import metadata
from .rbac import permissions, role_permissions, roles, user_roles

__all__ = [
    "AccessAuditLog",
    "AuthToken",
    "Base",
    "MfaConfiguration",
    "Permission",
    "Role",
    "RolePermission",
    "SecurityEvent",
    "User",
    "UserRole",
    "UserSession",
]

IPAddress: TypeAlias = IPv4Address | IPv6Address | IPv4Interface | IPv6Interface
"""What asyncpg reads an ``inet`` as (an address, or an interface when it has a prefix length);
it also takes a ``str`` on the way in."""


class Base(DeclarativeBase):
    """The declarative base of the package's models; shares ``models.metadata``."""

    metadata = metadata


class User(Base):
    __table__ = users

    id: Mapped[int]
    email: Mapped[str]
    display_name: Mapped[str | None]
    password_hash: Mapped[str]
    is_active: Mapped[bool]
    is_verified: Mapped[bool]
    failed_login_count: Mapped[int]
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    phone_number: Mapped[str | None]
    verification_token_hash: Mapped[str | None]
    password_reset_token_hash: Mapped[str | None]
    password_reset_expires_at: Mapped[datetime | None]
    default_role_id: Mapped[int | None]
    role_assigned_at: Mapped[datetime | None]
    role_assigned_by: Mapped[int | None]


class UserSession(Base):
    __table__ = user_sessions

    id: Mapped[int]
    session_id: Mapped[str]
    user_id: Mapped[int]
    device_info: Mapped[dict[str, Any]]
    ip_address: Mapped[IPAddress | None]
    user_agent: Mapped[str | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    is_active: Mapped[bool]


class AuthToken(Base):
    __table__ = auth_tokens

    id: Mapped[int]
    user_id: Mapped[int]
    session_id: Mapped[int | None]
    token_hash: Mapped[str]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked: Mapped[bool]
    revoked_at: Mapped[datetime | None]
    token_type: Mapped[str]
    last_used_at: Mapped[datetime | None]


class MfaConfiguration(Base):
    __table__ = mfa_configurations

    id: Mapped[int]
    user_id: Mapped[int]
    totp_secret: Mapped[str | None]
    totp_enabled: Mapped[bool]
    sms_enabled: Mapped[bool]
    phone_number: Mapped[str | None]
    backup_codes: Mapped[list[str]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    trusted_devices: Mapped[list[Any]]


class Role(Base):
    __table__ = roles

    id: Mapped[int]
    name: Mapped[str]
    description: Mapped[str]
    parent_role_id: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Permission(Base):
    __table__ = permissions

    id: Mapped[int]
    resource: Mapped[str]
    action: Mapped[str]
    name: Mapped[str]  # GENERATED ALWAYS AS (resource || ':' || action) STORED: read-only
    description: Mapped[str]
    created_at: Mapped[datetime]


class RolePermission(Base):
    __table__ = role_permissions

    role_id: Mapped[int]
    permission_id: Mapped[int]
    granted_at: Mapped[datetime]


class UserRole(Base):
    __table__ = user_roles

    user_id: Mapped[int]
    role_id: Mapped[int]
    is_primary: Mapped[bool]
    granted_by: Mapped[int | None]
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class SecurityEvent(Base):
    __table__ = security_events

    id: Mapped[int]
    user_id: Mapped[int | None]
    event_type: Mapped[str]
    severity: Mapped[str]
    ip_address: Mapped[IPAddress | None]
    user_agent: Mapped[str | None]
    details: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]


class AccessAuditLog(Base):
    __table__ = access_audit_logs

    id: Mapped[int]
    user_id: Mapped[int | None]
    resource: Mapped[str]
    action: Mapped[str]
    granted: Mapped[bool]
    roles_checked: Mapped[list[str]]
    reason: Mapped[str | None]
    ip_address: Mapped[IPAddress | None]
    occurred_at: Mapped[datetime]
    resource_id: Mapped[int | None]
    user_agent: Mapped[str | None]
