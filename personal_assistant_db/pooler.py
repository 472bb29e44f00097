"""Connection poolers in front of PostgreSQL (``DB_POOLER``): what each mode changes.

- ``none``: a direct server. asyncpg's and SQLAlchemy's statement caches on (named prepared
  statements), ``statement_timeout`` and ``application_name`` sent as startup parameters.
- ``pgbouncer-session``: a server connection per client connection, so statements stay cached.
  PgBouncer rejects ``statement_timeout`` as a startup parameter (``unsupported startup
  parameter``), so it is ``SET`` once on each new connection.
- ``pgbouncer-transaction``: a server connection per *transaction*. Both statement caches are
  off: asyncpg then uses the unnamed statement and re-sends ``Parse`` with every ``Bind``, so no
  statement outlives its round trip and none can meet another server connection. Each statement
  costs one extra round trip (the ``Describe``). ``statement_timeout`` rides on every ``BEGIN``
  as ``SET LOCAL`` in the same message (no extra round trip); statements outside a transaction
  get the role's own setting (``ALTER ROLE ... SET statement_timeout``).

Measured options, the cheaper one rejected and why: docs/scaling.md. ``application_name`` is a
startup parameter PgBouncer tracks and forwards, so it is sent as before in every mode.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .errors import PoolerMismatch
from .failures import sqlstate_of
from .logs import get_logger

__all__ = [
    "attach",
    "begin_suffix",
    "connection_class",
    "detect_mismatch",
    "transaction_pooling_args",
]

log = get_logger()

# Named statements meeting the wrong server connection: "prepared statement ... does not exist"
# (26000) and "... already exists" (42P05).
_STATEMENT_STATES = frozenset({"26000", "42P05"})
_STARTUP_SIGN = "unsupported startup parameter"


def transaction_pooling_args(statement_timeout_ms: int) -> dict[str, Any]:
    """asyncpg/SQLAlchemy ``connect_args`` for ``DB_POOLER=pgbouncer-transaction``."""
    args: dict[str, Any] = {
        "statement_cache_size": 0,  # asyncpg: the unnamed statement, Parse sent with each Bind
        "prepared_statement_cache_size": 0,  # SQLAlchemy: no statement object kept across calls
    }
    suffix = begin_suffix(statement_timeout_ms)
    if suffix:
        args["connection_class"] = connection_class(suffix)
    return args


def begin_suffix(statement_timeout_ms: int) -> str:
    """What rides on every ``BEGIN`` in transaction mode (``""`` when nothing needs to)."""
    if not statement_timeout_ms:
        return ""
    return f" SET LOCAL statement_timeout = {int(statement_timeout_ms)};"


@functools.cache
def connection_class(suffix: str) -> type[Any]:
    """An asyncpg ``Connection`` subclass that appends ``suffix`` to each ``BEGIN``.

    asyncpg's ``Transaction.start()`` sends ``BEGIN ...;`` as a simple query, which may carry
    more statements: ``BEGIN; SET LOCAL ...;`` is one message and one round trip.
    """
    import asyncpg

    class PoolerConnection(asyncpg.Connection):  # type: ignore[misc]
        # asyncpg's own signature, timeout included
        async def execute(
            self,
            query: str,
            *args: Any,
            timeout: float | None = None,  # noqa: ASYNC109
        ) -> str:
            if not args and query.startswith("BEGIN") and query.endswith(";"):
                query += suffix
            result: str = await super().execute(query, *args, timeout=timeout)
            return result

    PoolerConnection.__qualname__ = PoolerConnection.__name__ = "PoolerConnection"
    return PoolerConnection


def detect_mismatch(exc: BaseException) -> PoolerMismatch | None:
    """The PgBouncer signature in an error seen while ``DB_POOLER=none``, as an error naming the
    setting, or None. Matches the server's text but never repeats it."""
    code = sqlstate_of(exc)
    text = " ".join(str(e) for e in (exc, getattr(exc, "orig", None), exc.__cause__) if e)
    if code in _STATEMENT_STATES and "__asyncpg_stmt_" in text:
        why = (
            f"a prepared statement met another server connection (SQLSTATE {code}), as "
            "behind a pooler in transaction mode (or after a DISCARD ALL in the app's own SQL)"
        )
    elif _STARTUP_SIGN in text:
        why = "the server rejected a startup parameter as PgBouncer does"
    else:
        return None
    return PoolerMismatch(why)


def attach(engine: Engine, pooler: str, statement_timeout_ms: int) -> None:
    """What ``DB_POOLER`` needs on the engine (the sync engine behind the AsyncEngine):

    - ``none``: PgBouncer's error signatures become ``PoolerMismatch``, logged once;
    - ``pgbouncer-session``: ``SET statement_timeout`` once on each new connection.
    """
    if pooler == "pgbouncer-session" and statement_timeout_ms:
        statement = f"SET statement_timeout = {int(statement_timeout_ms)}"

        def on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.await_(dbapi_connection._connection.execute(statement))

        event.listen(engine, "connect", on_connect)
    if pooler != "none":
        return
    said = False

    def on_error(context: Any) -> BaseException | None:
        nonlocal said
        mismatch = detect_mismatch(context.original_exception)
        if mismatch is None:
            return None
        if not said:
            said = True
            log.error("db.pooler.detected", setting="DB_POOLER", hint=str(mismatch))
        return mismatch

    event.listen(engine, "handle_error", on_error, retval=True)
