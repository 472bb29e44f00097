"""``?schema=`` in ``DATABASE_URL`` for the app: the schema the migrations used is the app's.

``pa-db migrate apply`` puts the package's tables in the URL's ``?schema=`` (yoyo sets
``search_path`` to it). The app, given the same URL, resolves to the same schema in two layers:

- ``schema_translate_map = {None: schema}`` on every engine: each statement SQLAlchemy builds
  (``models``, any schema-less ``Table``, the ORM, the statement API's Core statements) names
  the schema in its SQL text. No session state is involved, so it holds behind PgBouncer in
  transaction mode as well. The fast path renders the map into its cached SQL once, so the
  cost per query is nil (bench/schema.py);
- ``search_path = "<schema>", public`` for SQL written as text (``db.fetch_all("SELECT ...
  FROM users")``, ``exec_driver_sql``): a startup parameter on a direct server, a ``SET`` on
  each new connection behind PgBouncer in session mode (PgBouncer rejects it at startup), and
  ``SET LOCAL`` riding on each ``BEGIN`` in transaction mode (outside a transaction there, text
  SQL gets the role's own ``search_path``: ``ALTER ROLE ... SET search_path``).

``public`` stays on the path after the schema, so the app's own tables and extensions there
still resolve; the package's names (``users``, ``roles``) resolve to the schema first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from .errors import ConnectFatal, PoolerMismatch

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "SCHEMA_PARAM",
    "is_schema_name",
    "require_schema",
    "schema_of",
    "search_path",
    "translate_map",
    "without_schema",
]

SCHEMA_PARAM = "schema"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # as migrate/target.py: yoyo puts it in unquoted


def is_schema_name(value: object) -> bool:
    """One plain lower-case identifier (what ``pa-db migrate`` accepts)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def schema_of(url: URL) -> str | None:
    """The URL's ``?schema=`` value, or None."""
    value = url.query.get(SCHEMA_PARAM)
    return value if isinstance(value, str) and value else None


def without_schema(url: URL) -> URL:
    """``url`` without ``?schema=``: it is ours, not a driver parameter (asyncpg would send it
    to the server as a setting, which refuses it)."""
    return url.difference_update_query([SCHEMA_PARAM]) if SCHEMA_PARAM in url.query else url


def search_path(schema: str) -> str:
    """The ``search_path`` value: the schema first, then ``public``."""
    return f'"{schema}", public'


def translate_map(schema: str | None) -> dict[str, Any]:
    """Engine execution options: ``schema_translate_map`` when a schema is set, else none."""
    return {"schema_translate_map": {None: schema}} if schema else {}


async def require_schema(
    engine: AsyncEngine, schema: str | None, where: str, pooler: str = "none"
) -> None:
    """Check ``?schema=`` once at start, on one connection:

    - the schema must exist (else every query on the package's tables would fail with "relation
      does not exist"): ConnectFatal;
    - with ``DB_POOLER=none`` the session must have the ``search_path``: a pooler that drops
      startup parameters (PgBouncer's ``ignore_startup_parameters``) would leave text SQL on
      ``public`` without a word. PoolerMismatch, naming ``DB_POOLER``.
    """
    if schema is None:
        return
    async with engine.connect() as conn:
        await conn.execution_options(pa_db_health=True)  # not traced nor measured
        query = text("SELECT to_regnamespace(:schema) IS NOT NULL, current_schema()")
        found, current = (await conn.execute(query, {"schema": schema})).one()
    if not found:
        raise ConnectFatal(
            f"could not use {where}: schema {schema!r} (from ?schema= in DATABASE_URL) does not "
            "exist; create it (CREATE SCHEMA) and run `pa-db migrate apply`, or fix the URL",
            cause="InvalidSchemaName",
        )
    if pooler == "none" and current != schema:
        raise PoolerMismatch(
            f"the search_path for ?schema={schema} did not reach the server (the session's "
            "schema is another), as when a pooler drops startup parameters "
            "(PgBouncer's ignore_startup_parameters)"
        )
