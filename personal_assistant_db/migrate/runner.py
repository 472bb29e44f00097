"""Running yoyo: one backend under yoyo's lock, migrations one at a time, lock timeouts retried.

Every migration runs with ``lock_timeout`` and ``statement_timeout`` set on its connection.
A migration that hits ``lock_timeout`` (SQLSTATE 55P03) is retried with backoff: it ran in one
transaction, so nothing of it was applied. A lock left behind by a crashed runner is reported with
its pid, its age and the command that clears it.

After each apply the runner records the sha256 of the migration's text in
``_pa_db_migration_hashes`` (beside yoyo's tables), so ``verify`` can tell when a migration that is
already applied has since been edited: yoyo itself only hashes the ID.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql
from yoyo import exceptions as yoyo_exceptions
from yoyo import get_backend, read_migrations

from ..errors import MigrationError, MigrationLockHeld
from .source import SOURCE, shipped
from .target import Target

__all__ = ["HASH_TABLE", "Runner", "describe"]

HASH_TABLE = "_pa_db_migration_hashes"


class Runner:
    """One yoyo backend on a Target. Use as a context manager; ``locked()`` for changes."""

    def __init__(
        self, target: Target, *, lock_wait: float = 10.0, extra_sources: tuple[str, ...] = ()
    ) -> None:
        if lock_wait <= 0:
            raise MigrationError(f"lock wait must be > 0 seconds, got {lock_wait}")
        self.target = target
        self.lock_wait = lock_wait
        self.extra_sources = extra_sources  # e.g. the adoption steps (migrate/adoption/steps.py)
        self._backend: Any = None
        self._migrations: dict[str, Any] = {}

    def __enter__(self) -> Runner:
        # target.connect() gives clear errors for a missing database or schema. Two runners
        # starting together would race creating the bookkeeping tables (ours, and yoyo's
        # yoyo_lock, whose creation error yoyo swallows): an advisory lock serializes set-up.
        with self.target.connect() as conn:
            try:
                conn.execute(
                    "SELECT pg_advisory_lock(hashtext('pa_db_migrate:' || current_schema()))"
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (migration_id text PRIMARY KEY,"
                        " sha256 text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
                    ).format(self.target.qualified(HASH_TABLE))
                )
                self._backend = get_backend(self.target.yoyo_uri())
            except psycopg.errors.LockNotAvailable:
                raise MigrationLockHeld(
                    f"another runner held the set-up lock for more than lock_timeout "
                    f"({self.target.lock_timeout_ms} ms); retry when it has finished"
                ) from None
            except psycopg.Error as exc:
                raise MigrationError(
                    f"could not prepare {self.target.safe_url} for migrations: {describe(exc)}"
                ) from None
        self._migrations = {m.id: m for m in read_migrations(SOURCE, *self.extra_sources)}
        return self

    def __exit__(self, *exc: object) -> None:
        if self._backend is not None:
            self._backend.connection.close()
            self._backend = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            raise RuntimeError("Runner used outside its with-block")
        return self._backend

    # -- reading ---------------------------------------------------------------------------
    def applied(self) -> list[str]:
        """Applied migration IDs in the order they were applied."""
        self.backend.ensure_internal_schema_updated()
        cursor = self.backend.execute(
            f"SELECT migration_id FROM {self.backend.migration_table_quoted}"
            " ORDER BY applied_at_utc, migration_id"
        )
        rows = cursor.fetchall()
        return [str(r[0]) for r in rows]

    def recorded_hashes(self) -> dict[str, str]:
        cursor = self.backend.execute(
            f"SELECT migration_id, sha256 FROM {self.backend.quote_identifier(HASH_TABLE)}"
        )
        rows = cursor.fetchall()
        return {str(a): str(b) for a, b in rows}

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold yoyo's lock; raise MigrationLockHeld (with pid, age and the fix) on timeout."""
        lock = self.backend.lock(timeout=self.lock_wait)
        try:
            lock.__enter__()
        except yoyo_exceptions.LockTimeout:
            raise MigrationLockHeld(self.describe_lock()) from None
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def lock_row(self) -> tuple[int, datetime | None] | None:
        """The current ``yoyo_lock`` row (pid, ctime in UTC), if any."""
        with self.target.connect() as conn:
            row = conn.execute(
                sql.SQL("SELECT pid, ctime FROM {}").format(self.target.qualified("yoyo_lock"))
            ).fetchone()
        return (int(row[0]), row[1]) if row else None

    def describe_lock(self) -> str:
        row = self.lock_row()
        if row is None:
            return f"the migration lock was busy for {self.lock_wait:g}s (another runner)"
        pid, ctime = row
        age = (datetime.now(UTC).replace(tzinfo=None) - ctime).total_seconds() if ctime else None
        alive = _pid_alive(pid)
        here = (
            "a process with that pid is running on this host"
            if alive
            else "no process with that pid runs on this host (stale if it ran here)"
        )
        shown_age = f"{age:.0f}s" if age is not None else "unknown"
        return (
            f"migration lock held by pid {pid} since {ctime} UTC (age {shown_age}); {here}. "
            "If no migration is running anywhere, clear it with `pa-db migrate unlock` "
            "(or `yoyo break-lock --database URL`)."
        )

    def unlock(self) -> int:
        with self.target.connect() as conn:
            cursor = conn.execute(
                sql.SQL("DELETE FROM {}").format(self.target.qualified("yoyo_lock"))
            )
            return cursor.rowcount

    # -- changing --------------------------------------------------------------------------
    def apply_one(self, mid: str) -> None:
        digest = {m.id: m.sha256 for m in shipped()}.get(mid)
        self._retrying(mid, "apply", lambda: self.backend.apply_one(self._migrations[mid]))
        if digest is None:  # an adoption step: its text is the package's code, not a file's SQL
            return
        with self.backend.transaction():
            self.backend.execute(
                f"INSERT INTO {self.backend.quote_identifier(HASH_TABLE)} (migration_id, sha256)"
                " VALUES (:id, :sha) ON CONFLICT (migration_id) DO UPDATE"
                " SET sha256 = EXCLUDED.sha256, recorded_at = now()",
                {"id": mid, "sha": digest},
            )

    def rollback_one(self, mid: str) -> None:
        self._retrying(mid, "roll back", lambda: self.backend.rollback_one(self._migrations[mid]))
        with self.backend.transaction():
            self.backend.execute(
                f"DELETE FROM {self.backend.quote_identifier(HASH_TABLE)} WHERE migration_id = :id",
                {"id": mid},
            )

    def _retrying(self, mid: str, verb: str, action: Callable[[], None]) -> None:
        retries = self.target.lock_retries
        for attempt in range(retries + 1):
            try:
                action()
                return
            except psycopg.errors.LockNotAvailable:
                if attempt == retries:
                    raise MigrationError(
                        f"could not {verb} {mid}: lock_timeout ({self.target.lock_timeout_ms} ms)"
                        f" reached {retries + 1} times (SQLSTATE 55P03); another session holds a"
                        " conflicting lock. Nothing of it was applied; retry later."
                    ) from None
                time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
            except psycopg.errors.QueryCanceled:
                raise MigrationError(
                    f"could not {verb} {mid}: statement_timeout"
                    f" ({self.target.statement_timeout_ms} ms) reached; nothing of it was applied"
                    " (raise DB_MIGRATE_STATEMENT_TIMEOUT_MS for long migrations)"
                ) from None
            except psycopg.Error as exc:
                state = exc.sqlstate or "?"
                primary = exc.diag.message_primary or type(exc).__name__
                atomic = {m.id: m.transactional for m in shipped()}.get(mid, False)
                outcome = (
                    "it ran in one transaction, so nothing of it was applied"
                    if atomic
                    else "it is not transactional: its completed steps were undone by their"
                    " rollback steps; run `pa-db migrate verify` (an INVALID index may be left)"
                )
                raise MigrationError(
                    f"could not {verb} {mid}: {primary} (SQLSTATE {state}); {outcome}"
                ) from None


def describe(exc: psycopg.Error) -> str:
    """The server's primary message and SQLSTATE (never the connection string)."""
    primary = exc.diag.message_primary if exc.diag else None
    return f"{primary or type(exc).__name__} (SQLSTATE {exc.sqlstate or '?'})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
