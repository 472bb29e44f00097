"""SQLAlchemy Core descriptions of the tables the demo touches (the migrations own the schema)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("email", Text, nullable=False),
    Column("display_name", Text),
    Column("password_hash", Text, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("parent_role_id", BigInteger, ForeignKey("roles.id")),
)

permissions = Table(
    "permissions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("resource", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("name", Text),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column("role_id", BigInteger, ForeignKey("roles.id"), primary_key=True),
    Column("permission_id", BigInteger, ForeignKey("permissions.id"), primary_key=True),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id"), primary_key=True),
    Column("role_id", BigInteger, ForeignKey("roles.id"), primary_key=True),
    Column("is_primary", Boolean, nullable=False),
    Column("granted_by", BigInteger, ForeignKey("users.id")),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
)

access_audit_logs = Table(
    "access_audit_logs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id")),
    Column("resource", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("roles_checked", ARRAY(Text), nullable=False),
    Column("reason", Text),
    Column("ip_address", INET),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)
