"""Client-side time bounds on the engine: a bounded pre-ping, and timed-out connections discarded.

``statement_timeout`` cannot fire while a backend is frozen (SIGSTOP, a stuck host), so only the
driver can end the wait: asyncpg's ``command_timeout`` (``DB_COMMAND_TIMEOUT``) for queries and
``DB_PING_TIMEOUT`` for the pre-ping. After such a timeout the connection must be *discarded*:
returning it to the pool runs a ROLLBACK on the same frozen backend, which waits again
(FIELD_NOTES), and SQLAlchemy's graceful close of an invalidated asyncpg connection waits up to
2 s more. So both paths abort the socket at once (``asyncpg.Connection.terminate()``) and make
SQLAlchemy invalidate that one connection (not the whole pool).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext

__all__ = ["install_bounds"]


def _terminate(driver_connection: Any) -> None:
    terminate = getattr(driver_connection, "terminate", None)
    if terminate is not None:
        terminate()


def _discard_timed_out(context: ExceptionContext) -> None:
    """handle_error: a driver timeout (TimeoutError) invalidates that connection only."""
    if not isinstance(context.original_exception, TimeoutError) or context.is_pre_ping:
        return
    conn = context.connection
    if conn is not None and not conn.invalidated:
        fairy = conn.connection  # the pool's proxied connection
        _terminate(fairy.driver_connection)
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False


def install_bounds(engine: Engine, *, ping_timeout: float) -> None:
    """Bound ``engine``'s pre-ping by ``ping_timeout`` and discard connections whose command timed
    out. ``engine`` is the sync engine behind the AsyncEngine (asyncpg dialect)."""
    event.listen(engine, "handle_error", _discard_timed_out)
    dialect = engine.dialect

    def bounded_ping(dbapi_connection: Any) -> bool:
        # One simple-protocol round trip (no prepared statement: safe behind PgBouncer), bounded.
        driver = dbapi_connection.driver_connection
        try:
            dbapi_connection.await_(driver.execute("SELECT 1", timeout=ping_timeout))
        except TimeoutError:
            _terminate(driver)
            # DisconnectionError (not a DBAPI error): the pool invalidates this connection only
            # and checks out another; a disconnect-class DBAPI error would invalidate them all.
            raise sa_exc.DisconnectionError(
                f"pre-ping did not answer within DB_PING_TIMEOUT={ping_timeout:g}s"
            ) from None
        except Exception as error:
            dbapi_connection._handle_exception(error)  # asyncpg -> DBAPI error, as stock ping
        return True

    dialect.do_ping = bounded_ping  # type: ignore[method-assign]
