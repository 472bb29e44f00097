"""The package's tables as SQLAlchemy models: Core ``Table``s and ORM classes on one ``MetaData``.

A public subpackage, imported on its own (``from personal_assistant_db import models``; the
top-level package does not import it, so an app that never uses the models never loads the ORM):

- ``models.metadata`` and one Core ``Table`` per table the migrations create (``models.users``,
  ``models.user_sessions``, ...): for ``db.fetch_*``/``execute`` and ``db.connect()``;
- one ORM class per table (``models.User``, ``models.UserSession``, ...), mapped onto those same
  tables, for ``AsyncSession``.

The tables carry no schema. With ``?schema=auth`` in ``DATABASE_URL``, ``Database`` resolves them
to ``auth`` (docs/models.md says how and what it costs). ``tests/test_models.py`` proves that the
tables equal the migrated schema. Defining the tables is all this import does.

Layout (one ``Table`` per table, in migration order, columns in the order the migration
creates them, every constraint and index under the migration's own name):

- ``metadata``: the one ``MetaData``; its naming convention gives primary and foreign keys
  PostgreSQL's own default names (``users_pkey``, ``user_sessions_user_id_fkey``);
- ``columns``: the column shapes the migrations repeat (identity id, ``timestamptz DEFAULT
  now()``, boolean flags, ``REFERENCES users (id)``);
- ``auth`` (0001-0003), ``rbac`` (0004), ``audit`` (0005, 0007): the Core tables;
- ``orm``: the ORM classes (hybrid declarative: ``__table__`` is the Core table).

Server defaults and CHECK expressions are written as PostgreSQL prints them back, so that
``metadata.create_all`` gives the same catalog as the migrations. Triggers
(``*_set_updated_at``) and 0006's seed rows live in the migrations only. A migration that
changes a table changes its ``Table`` here in the same commit; ``tests/test_models.py`` fails
until it does.
"""

from __future__ import annotations

from .audit import access_audit_logs, security_events
from .auth import auth_tokens, mfa_configurations, user_sessions, users
from .metadata import metadata
from .orm import (
    AccessAuditLog,
    AuthToken,
    Base,
    MfaConfiguration,
    Permission,
    Role,
    RolePermission,
    SecurityEvent,
    User,
    UserRole,
    UserSession,
)
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
    "access_audit_logs",
    "auth_tokens",
    "metadata",
    "mfa_configurations",
    "permissions",
    "role_permissions",
    "roles",
    "security_events",
    "user_roles",
    "user_sessions",
    "users",
]
