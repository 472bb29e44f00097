"""The audit trail: security events and access decisions (migrations 0005, 0007, 0008)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB

from .columns import identity_id, now, user_ref
from .metadata import metadata

__all__ = ["access_audit_logs", "security_events"]

# -- 0005_audit (+ 0007_audit_time_indexes) ----------------------------------------------------
security_events = Table(
    "security_events",
    metadata,
    identity_id(),
    user_ref("user_id", nullable=True, ondelete="SET NULL"),
    Column("event_type", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("ip_address", INET),
    Column("user_agent", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    now("occurred_at"),
    CheckConstraint(
        "severity = ANY (ARRAY['info'::text, 'low'::text, 'medium'::text, 'high'::text, "
        "'critical'::text])",
        name="security_events_severity_known",
    ),
    CheckConstraint(
        "event_type ~ '^[a-z][a-z0-9_.]{0,99}$'::text", name="security_events_event_type_format"
    ),
)
Index("security_events_user_id_idx", security_events.c.user_id)
Index("security_events_occurred_at_idx", security_events.c.occurred_at)

access_audit_logs = Table(
    "access_audit_logs",
    metadata,
    identity_id(),
    user_ref("user_id", nullable=True, ondelete="SET NULL"),
    Column("resource", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("roles_checked", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("reason", Text),
    Column("ip_address", INET),
    now("occurred_at"),
    Column("resource_id", BigInteger),  # 0008_app_columns
    Column("user_agent", Text),  # 0008_app_columns
)
Index("access_audit_logs_user_id_idx", access_audit_logs.c.user_id)
Index("access_audit_logs_occurred_at_idx", access_audit_logs.c.occurred_at)
