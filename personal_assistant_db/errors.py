"""The exception tree of personal_assistant_db.

Every error this package raises on purpose derives from one base class::

    PaDbError
    ├── ConfigurationError        bad DATABASE_URL / DB_* values; .problems lists every one
    │   └── PoolerMismatch        DB_POOLER=none, but the URL goes through PgBouncer
    ├── DatabaseNotStarted        Database.connect() or .engine before start()
    ├── WrongEventLoop            db.transaction() on a loop other than the one that started it
    ├── ConnectError              the database could not be reached at start
    │   ├── ConnectFatal          not worth retrying: bad credentials, missing database
    │   ├── ConnectTimeout        transient failures until the startup deadline ran out
    │   └── PrimaryUnavailable    db.begin() found no read-write primary (failover under way);
    │                             nothing was sent, and the package never retries a write
    ├── MigrationError            pa-db migrate: a migration could not be planned or run
    │   ├── UnknownMigration      --to names an ID that does not exist
    │   ├── MigrationLockHeld     another runner holds yoyo's lock (or a stale row is left)
    │   └── MigrationDrift        applied migrations or the live schema differ from the package
    └── AnalysisError             pa-db doctor could not run at all

Messages never contain a password: URLs are redacted before they reach an error.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AnalysisError",
    "ConfigurationError",
    "ConnectError",
    "ConnectFatal",
    "ConnectTimeout",
    "DatabaseNotStarted",
    "MigrationDrift",
    "MigrationError",
    "MigrationLockHeld",
    "PaDbError",
    "PoolerMismatch",
    "PrimaryUnavailable",
    "SettingProblem",
    "UnknownMigration",
    "WrongEventLoop",
]


class PaDbError(Exception):
    """Base class of every error raised by personal_assistant_db."""


@dataclass(frozen=True)
class SettingProblem:
    """One bad setting: which variable, what is wrong, what is expected."""

    variable: str
    problem: str
    expected: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}; expected {self.expected}"


class ConfigurationError(PaDbError, ValueError):
    """One or more settings are invalid. ``problems`` lists every one of them."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid database settings ({len(self.problems)}):\n{lines}")


class PoolerMismatch(ConfigurationError):
    """``DB_POOLER=none``, but the database answered as PgBouncer does (an unsupported startup
    parameter, a prepared statement that met another server connection)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            [
                SettingProblem(
                    "DB_POOLER",
                    f"is none, but {why}",
                    "DB_POOLER=pgbouncer-transaction or pgbouncer-session, as the pooler's "
                    "pool_mode (docs/scaling.md)",
                )
            ]
        )


class DatabaseNotStarted(PaDbError, RuntimeError):
    """The Database was used before ``start()`` (or after ``stop()``)."""


class WrongEventLoop(PaDbError, RuntimeError):
    """The Database is used from an event loop other than the one it was started on (its pooled
    connections belong to that loop); nothing was checked out."""


class ConnectError(PaDbError):
    """The database could not be reached at start.

    ``cause`` is the class name of the underlying error (safe to log); the message never carries
    the server's own text, which may contain the user or database name.
    """

    def __init__(self, message: str, *, cause: str = "") -> None:
        self.cause = cause
        super().__init__(message)


class ConnectFatal(ConnectError):
    """Connecting failed for a reason that retrying cannot fix (credentials, missing database)."""


class ConnectTimeout(ConnectError):
    """Transient connection failures went on past the startup deadline."""


class PrimaryUnavailable(ConnectError):
    """No server accepted a read-write connection for a write (the primary is down, or a
    failover is in progress). The transaction never started: nothing was sent. The package does
    not retry it; the caller may, once a primary is back."""


class MigrationError(PaDbError):
    """A migration could not be planned, applied or rolled back."""


class UnknownMigration(MigrationError, LookupError):
    """A migration ID given on the command line does not exist."""


class MigrationLockHeld(MigrationError):
    """yoyo's lock is held by another runner, or a stale lock row was left behind."""


class MigrationDrift(MigrationError):
    """Applied migrations or the live schema do not match what the package ships."""


class AnalysisError(PaDbError):
    """An optimization analysis could not run at all (it could not connect, say)."""
