"""Column shapes the migrations repeat: identity ids, timestamps, flags, references to users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Identity, func, text

__all__ = ["NAME_PATTERN", "flag", "identity_id", "now", "user_ref"]

NAME_PATTERN = "'^[a-z][a-z0-9_]{0,62}$'"  # the role / permission name pattern


def identity_id() -> Column[int]:
    """``id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY``."""
    return Column("id", BigInteger, Identity(always=True), primary_key=True)


def now(name: str) -> Column[datetime]:
    """``<name> timestamptz NOT NULL DEFAULT now()``."""
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


def flag(name: str, default: bool) -> Column[bool]:
    """``<name> boolean NOT NULL DEFAULT true|false``."""
    value = text("true") if default else text("false")
    return Column(name, Boolean, nullable=False, server_default=value)


def user_ref(name: str, *, nullable: bool, ondelete: str) -> Column[int]:
    """``<name> bigint [NOT NULL] REFERENCES users (id) ON DELETE ...``."""
    fk = ForeignKey("users.id", ondelete=ondelete)
    return Column(name, BigInteger, fk, nullable=nullable)
