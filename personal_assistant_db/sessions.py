"""ORM sessions on the package's engine: ``db.session()`` and ``db.sessionmaker()``.

A session never holds an engine. Its ``get_bind`` asks the ``Database`` each time the session
begins a transaction:

- started: ``db.engine``'s sync engine, so every ORM statement goes through the one measured
  pool (``PoolStats``), the query hook (spans, the duration histogram, the P95 window) and the
  engine's connect settings;
- stopped: ``DatabaseNotStarted``, instead of a second pool quietly opened on a disposed engine;
- under ``db.force_rollback()``: the pinned connection, in a SAVEPOINT of the session's own
  (``join_transaction_mode="create_savepoint"``), so ``session.commit()`` releases the savepoint
  and the test's outer transaction still rolls everything back.

A factory built before ``start()`` therefore follows the engine across ``stop()``/``start()``.
Sessions default to ``expire_on_commit=False`` (attribute access after a commit would otherwise
need an ``await``); pass any ``AsyncSession`` option to override it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from .database import Database

__all__ = ["DatabaseSession", "SessionMethods", "session_factory"]

_DEFAULTS: dict[str, Any] = {
    "expire_on_commit": False,
    "join_transaction_mode": "create_savepoint",
}


class DatabaseSession(Session):
    """The sync ``Session`` under ``AsyncSession``: binds to the ``Database``'s current engine
    (or pinned connection) when a transaction begins."""

    def __init__(self, *args: Any, database: Database, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.database = database

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine | Connection:
        db = self.database
        pinned = db.pinned_connection
        if pinned is not None:
            return pinned.sync_connection  # type: ignore[return-value]
        return db.engine.sync_engine  # DatabaseNotStarted when stopped


def session_factory(db: Database, **options: Any) -> async_sessionmaker[AsyncSession]:
    """``async_sessionmaker`` whose sessions bind through ``db`` (never to a fixed engine)."""
    for name in ("bind", "binds"):
        if name in options:
            raise TypeError(
                f"db.sessionmaker({name}=...): sessions bind to the Database's engine; "
                "use sqlalchemy.ext.asyncio.async_sessionmaker for another bind"
            )
    settings = {**_DEFAULTS, **options}
    sync_class = settings.pop("sync_session_class", DatabaseSession)
    if not (isinstance(sync_class, type) and issubclass(sync_class, DatabaseSession)):
        raise TypeError(
            "db.sessionmaker(sync_session_class=...): expected a subclass of "
            f"personal_assistant_db.DatabaseSession, got {sync_class!r}"
        )
    return async_sessionmaker(sync_session_class=sync_class, database=db, **settings)


class SessionMethods:
    """Mixed into ``Database``: ORM sessions on its engine."""

    def sessionmaker(self, **options: Any) -> async_sessionmaker[AsyncSession]:
        """A session factory; build it any time (before ``start()`` too). Its sessions bind to
        this Database's current engine, or to the pinned connection under
        ``force_rollback()``. ``options``: ``AsyncSession``'s (``expire_on_commit`` defaults to
        False)."""
        return session_factory(self, **options)  # type: ignore[arg-type]

    def session(self, **options: Any) -> AsyncSession:
        """``async with db.session() as session:`` an ``AsyncSession`` on this Database."""
        return session_factory(self, **options)()  # type: ignore[arg-type]
