"""The one ``MetaData`` every model table is defined on.

Tables carry no schema (``schema=None``): a ``?schema=`` in ``DATABASE_URL`` reaches them through
SQLAlchemy's ``schema_translate_map`` (``{None: "auth"}``), never through copies of the tables.
The naming convention gives primary and foreign keys the names PostgreSQL itself gives them
(``users_pkey``, ``user_sessions_user_id_fkey``), so the names match the migrated schema; every
other constraint and index is named in its table, as the migration names it.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["metadata"]

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    }
)
"""The package's tables (models/tables.py); ``metadata.sorted_tables`` in FK order."""
