"""Where migrations go: the psycopg URL for yoyo, the schema, the timeouts, a checked connection.

A ``Target`` is built from ``Settings`` or from a URL string in any accepted form. Opening it
checks the things that would otherwise fail half-way or silently: the database must exist and be
reachable, and a ``?schema=`` must name an existing schema (yoyo would otherwise swallow the error
and fail later with a confusing message).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql
from sqlalchemy.engine import URL

from ..errors import MigrationError
from ..failures import connect_hint
from ..settings import Settings
from ..urls import UrlError, parse_database_url, render_url, to_sync

__all__ = [
    "APPLICATION_NAME",
    "Source",
    "Target",
    "refuse_transaction_pooler",
    "scratch_database",
    "target_of",
]

APPLICATION_NAME = "pa-db-migrate"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Target:
    """A database (and schema) to migrate, with the timeouts every migration runs under."""

    url: URL = field(repr=False)  # psycopg 3 form, may carry ?schema=
    lock_timeout_ms: int = 5_000
    statement_timeout_ms: int = 60_000
    lock_retries: int = 3

    def __repr__(self) -> str:
        return f"Target({self.safe_url!r}, schema={self.schema!r})"

    @property
    def schema(self) -> str | None:
        value = self.url.query.get("schema")
        return value if isinstance(value, str) and value else None

    @property
    def safe_url(self) -> str:
        return render_url(self.url)

    def options(self) -> str:
        """libpq ``options``: the URL's own (if any), then our two timeouts."""
        ours = (
            f"-c lock_timeout={self.lock_timeout_ms}"
            f" -c statement_timeout={self.statement_timeout_ms}"
        )
        given = self.url.query.get("options")
        return f"{given} {ours}" if isinstance(given, str) and given.strip() else ours

    def yoyo_uri(self) -> str:
        """The URI for ``yoyo.get_backend``: psycopg 3, our timeouts and application name."""
        query: dict[str, Any] = dict(self.url.query)
        query["options"] = self.options()
        query["application_name"] = APPLICATION_NAME
        return self.url.set(query=query).render_as_string(hide_password=False)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (no ``schema``: that is ours, not libpq's)."""
        kwargs: dict[str, Any] = {
            k: v for k, v in self.url.query.items() if k != "schema" and isinstance(v, str)
        }
        for key, value in (
            ("host", self.url.host),
            ("port", self.url.port),
            ("user", self.url.username),
            ("password", self.url.password),
            ("dbname", self.url.database),
        ):
            if value is not None:
                kwargs[key] = value
        kwargs["application_name"] = APPLICATION_NAME
        kwargs.setdefault("connect_timeout", 10)
        kwargs["options"] = self.options()
        return kwargs

    @contextlib.contextmanager
    def connect(self, *, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A psycopg connection with search_path set to the schema; clear errors on failure."""
        try:
            conn = psycopg.connect(**self.connect_kwargs(), autocommit=autocommit)
        except psycopg.OperationalError as exc:
            raise MigrationError(
                f"cannot connect to {self.safe_url}: {connect_hint(exc, 'the database URL')}"
            ) from None
        with conn:
            if self.schema:
                found = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if found is None:
                    raise MigrationError(
                        f"schema {self.schema!r} (from ?schema= in the URL) does not exist in "
                        f"{self.safe_url}: create it first (CREATE SCHEMA ...) or fix the URL"
                    )
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                if not autocommit:
                    conn.commit()
            yield conn

    def qualified(self, table: str) -> sql.Composable:
        if self.schema:
            return sql.Identifier(self.schema, table)
        return sql.Identifier(table)


Source = Settings | str | URL | Target
"""Anything a migration command accepts as where to go."""


def refuse_transaction_pooler(settings: Settings) -> None:
    """Migrations never run through PgBouncer in transaction mode: their session settings
    (lock_timeout, statement_timeout) and non-transactional steps would land on whichever server
    connection comes next. DATABASE_MIGRATE_URL names the direct way in."""
    if settings.pooler == "pgbouncer-transaction" and settings.migrate_url is None:
        raise MigrationError(
            "DATABASE_URL goes through PgBouncer in transaction mode "
            "(DB_POOLER=pgbouncer-transaction), where migrations cannot run: set "
            "DATABASE_MIGRATE_URL to a direct PostgreSQL URL (or pass --database URL)"
        )


def target_of(
    settings_or_url: Source,
    *,
    lock_timeout_ms: int | None = None,
    statement_timeout_ms: int | None = None,
) -> Target:
    """A Target from Settings (uses its migrate timeouts), a URL in any accepted form, or a
    Target (returned as it is unless a timeout is overridden)."""
    if isinstance(settings_or_url, Target):
        if lock_timeout_ms is None and statement_timeout_ms is None:
            return settings_or_url
        url = settings_or_url.url
        lock = settings_or_url.lock_timeout_ms
        statement = settings_or_url.statement_timeout_ms
    elif isinstance(settings_or_url, Settings):
        refuse_transaction_pooler(settings_or_url)
        url = settings_or_url.migrate_sync_url
        lock = settings_or_url.migrate_lock_timeout_ms
        statement = settings_or_url.migrate_statement_timeout_ms
    else:
        raw = (
            render_url(settings_or_url, hide_secrets=False)
            if isinstance(settings_or_url, URL)
            else settings_or_url
        )
        try:
            url = to_sync(parse_database_url(raw))
        except UrlError as exc:
            raise MigrationError(f"database URL {exc}") from None
        lock, statement = 5_000, 60_000
    if lock_timeout_ms is not None:
        lock = lock_timeout_ms
    if statement_timeout_ms is not None:
        statement = statement_timeout_ms
    schema = url.query.get("schema")
    if schema is not None and not (isinstance(schema, str) and _SCHEMA_NAME.fullmatch(schema)):
        raise MigrationError(
            f"?schema= must be one plain lower-case identifier (yoyo puts it into search_path "
            f"unquoted), e.g. ?schema=auth; got {str(schema)[:40]!r}"
        )
    for name, value in (("lock_timeout_ms", lock), ("statement_timeout_ms", statement)):
        if value < 0:
            raise MigrationError(f"{name} must be >= 0 milliseconds (0 = none), got {value}")
    return Target(url=url, lock_timeout_ms=lock, statement_timeout_ms=statement)


@contextlib.contextmanager
def scratch_database(server: Target, *, prefix: str) -> Iterator[Target]:
    """A uniquely named empty database on ``server``'s server (with ``server``'s ``?schema=``
    created in it), dropped afterwards, even on error. Needs the CREATEDB privilege."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with server.connect() as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise MigrationError(
                "creating a scratch database needs the CREATEDB privilege on the server"
            ) from None
    scratch = Target(
        url=server.url.set(database=name),
        lock_timeout_ms=server.lock_timeout_ms,
        statement_timeout_ms=server.statement_timeout_ms,
    )
    try:
        if scratch.schema:
            bare = Target(url=scratch.url.difference_update_query(["schema"]))
            with bare.connect() as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch.schema)))
        yield scratch
    finally:
        bare_server = Target(url=server.url.difference_update_query(["schema"]))
        with bare_server.connect() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
