"""Roles and permissions (migration 0004; 0006 seeds rows only)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from .columns import NAME_PATTERN, flag, identity_id, now, user_ref
from .metadata import metadata

__all__ = ["permissions", "role_permissions", "roles", "user_roles"]

# -- 0004_rbac ---------------------------------------------------------------------------------
roles = Table(
    "roles",
    metadata,
    identity_id(),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=text("''::text")),
    Column("parent_role_id", BigInteger, ForeignKey("roles.id", ondelete="SET NULL")),
    now("created_at"),
    now("updated_at"),
    UniqueConstraint("name", name="roles_name_key"),
    CheckConstraint(f"name ~ {NAME_PATTERN}::text", name="roles_name_format"),
    CheckConstraint("parent_role_id <> id", name="roles_not_own_parent"),
)
Index("roles_parent_role_id_idx", roles.c.parent_role_id)

permissions = Table(
    "permissions",
    metadata,
    identity_id(),
    Column("resource", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("name", Text, Computed("(resource || ':'::text) || action", persisted=True)),
    Column("description", Text, nullable=False, server_default=text("''::text")),
    now("created_at"),
    UniqueConstraint("name", name="permissions_name_key"),
    CheckConstraint(f"resource ~ {NAME_PATTERN}::text", name="permissions_resource_format"),
    CheckConstraint(f"action ~ {NAME_PATTERN}::text", name="permissions_action_format"),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column(
        "role_id",
        BigInteger,
        ForeignKey("roles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "permission_id",
        BigInteger,
        ForeignKey("permissions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    now("granted_at"),
)
Index("role_permissions_permission_id_idx", role_permissions.c.permission_id)

user_roles = Table(
    "user_roles",
    metadata,
    Column(
        "user_id",
        BigInteger,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role_id", BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    flag("is_primary", False),
    user_ref("granted_by", nullable=True, ondelete="SET NULL"),
    now("granted_at"),
    Column("expires_at", DateTime(timezone=True)),
    CheckConstraint(
        "(expires_at IS NULL) OR (expires_at > granted_at)", name="user_roles_expiry_after_grant"
    ),
)
Index(
    "user_roles_one_primary_per_user",
    user_roles.c.user_id,
    unique=True,
    postgresql_where=user_roles.c.is_primary,
)
Index("user_roles_role_id_idx", user_roles.c.role_id)
Index("user_roles_granted_by_idx", user_roles.c.granted_by)
