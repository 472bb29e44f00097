"""Accounts: users, their sessions, refresh tokens and MFA (migrations 0001-0003, 0008)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB

from .columns import flag, identity_id, now, user_ref
from .metadata import metadata

__all__ = ["auth_tokens", "mfa_configurations", "user_sessions", "users"]

# -- 0001_auth_core ----------------------------------------------------------------------------
users = Table(
    "users",
    metadata,
    identity_id(),
    Column("email", Text, nullable=False),
    Column("display_name", Text),
    Column("password_hash", Text, nullable=False),
    flag("is_active", True),
    flag("is_verified", False),
    Column("failed_login_count", BigInteger, nullable=False, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_login_at", DateTime(timezone=True)),
    now("created_at"),
    now("updated_at"),
    # 0008_app_columns: the app's own data (how it reaches a user by SMS, reset/verification
    # token hashes, the default role and its assignment)
    Column("phone_number", Text),
    Column("verification_token_hash", Text),
    Column("password_reset_token_hash", Text),
    Column("password_reset_expires_at", DateTime(timezone=True)),
    Column("default_role_id", BigInteger, ForeignKey("roles.id", ondelete="SET NULL")),
    Column("role_assigned_at", DateTime(timezone=True)),
    Column("role_assigned_by", BigInteger, ForeignKey("users.id", ondelete="SET NULL")),
    CheckConstraint(
        r"(length(email) <= 320) AND (email ~ '^[^@\s]+@[^@\s]+$'::text)",
        name="users_email_format",
    ),
    CheckConstraint(r"password_hash ~ '^\$[a-z0-9-]+\$'::text", name="users_password_hash_format"),
    CheckConstraint("failed_login_count >= 0", name="users_failed_login_count_nonnegative"),
    UniqueConstraint("phone_number", name="users_phone_number_key"),
    CheckConstraint(
        "verification_token_hash ~ '^[0-9a-f]{64}$'::text",
        name="users_verification_token_hash_sha256",
    ),
    CheckConstraint(
        "password_reset_token_hash ~ '^[0-9a-f]{64}$'::text",
        name="users_password_reset_token_hash_sha256",
    ),
)
Index("users_email_lower_key", func.lower(users.c.email), unique=True)
Index("users_default_role_id_idx", users.c.default_role_id)  # 0009
Index("users_role_assigned_by_idx", users.c.role_assigned_by)  # 0009

# -- 0002_sessions_tokens ----------------------------------------------------------------------
user_sessions = Table(
    "user_sessions",
    metadata,
    identity_id(),
    Column("session_id", Text, nullable=False),
    user_ref("user_id", nullable=False, ondelete="CASCADE"),
    Column("device_info", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("ip_address", INET),
    Column("user_agent", Text),
    now("created_at"),
    now("last_seen_at"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    flag("is_active", True),
    UniqueConstraint("session_id", name="user_sessions_session_id_key"),
    CheckConstraint(
        "jsonb_typeof(device_info) = 'object'::text", name="user_sessions_device_info_object"
    ),
    CheckConstraint("expires_at > created_at", name="user_sessions_expiry_after_creation"),
)
Index("user_sessions_user_id_idx", user_sessions.c.user_id)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    identity_id(),
    user_ref("user_id", nullable=False, ondelete="CASCADE"),
    Column("session_id", BigInteger, ForeignKey("user_sessions.id", ondelete="CASCADE")),
    Column("token_hash", Text, nullable=False),
    now("issued_at"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    flag("revoked", False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("token_type", Text, nullable=False, server_default=text("'refresh'::text")),  # 0008
    Column("last_used_at", DateTime(timezone=True)),  # 0008
    UniqueConstraint("token_hash", name="auth_tokens_token_hash_key"),
    CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'::text", name="auth_tokens_token_hash_sha256"),
    CheckConstraint("expires_at > issued_at", name="auth_tokens_expiry_after_issue"),
    CheckConstraint("(revoked_at IS NULL) OR revoked", name="auth_tokens_revoked_at_when_revoked"),
    CheckConstraint(
        "token_type = ANY (ARRAY['refresh'::text, 'access'::text, 'reset'::text,"
        " 'verification'::text])",
        name="auth_tokens_token_type_known",
    ),
)
Index("auth_tokens_user_id_idx", auth_tokens.c.user_id)
Index("auth_tokens_session_id_idx", auth_tokens.c.session_id)

# -- 0003_mfa ----------------------------------------------------------------------------------
mfa_configurations = Table(
    "mfa_configurations",
    metadata,
    identity_id(),
    user_ref("user_id", nullable=False, ondelete="CASCADE"),
    Column("totp_secret", Text),
    flag("totp_enabled", False),
    flag("sms_enabled", False),
    Column("phone_number", Text),
    Column("backup_codes", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    now("created_at"),
    now("updated_at"),
    Column("trusted_devices", JSONB, nullable=False, server_default=text("'[]'::jsonb")),  # 0008
    UniqueConstraint("user_id", name="mfa_configurations_user_id_key"),
    CheckConstraint(
        "(NOT totp_enabled) OR (totp_secret IS NOT NULL)",
        name="mfa_configurations_totp_needs_secret",
    ),
    CheckConstraint(
        "(NOT sms_enabled) OR (phone_number IS NOT NULL)",
        name="mfa_configurations_sms_needs_phone",
    ),
)
