"""Which database errors are transient, which mean the connection is gone, and safe words for them.

SQLAlchemy 2.0 passes some asyncpg errors through raw and wraps others in ``DBAPIError``
(2.1 wraps more of them), so the chain of causes is walked for an SQLSTATE, an OSError or a
driver error class.

- ``is_transient``: worth retrying (connect retry, and the reads the fast path retries).
- ``is_disconnect``: the connection itself is unusable: discard it (invalidate) and use a new one.
- ``unavailable_cause``: why the database cannot serve right now, as a short label the HTTP
  layer maps to ``503`` (``pool_timeout``, ``restarting``, ``unavailable``, ``timeout``), or None
  for anything that may be a bug (it stays a ``500``).
- ``describe``: (cause class name, a safe hint); never the server's own message text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

__all__ = [
    "CONNECT_HINTS",
    "Unavailable",
    "connect_hint",
    "describe",
    "is_disconnect",
    "is_transient",
    "sqlstate_of",
    "unavailable_cause",
]

Unavailable = Literal["pool_timeout", "restarting", "unavailable", "timeout"]

# too many connections, out of memory, server shutting down / starting up, connection failures
TRANSIENT_SQLSTATES = frozenset(
    {"53300", "53400", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}
)
# admin/crash shutdown and connection exceptions: the session is gone
_DISCONNECT_SQLSTATES = frozenset({"57P01", "57P02", "08000", "08003", "08006"})
_RESTART_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
_QUERY_CANCELED = "57014"  # statement_timeout (or pg_cancel_backend)
# asyncpg while the server restarts: "cannot switch to state 12; another operation (2) is in
# progress" comes as InternalClientError instead of a disconnect (FIELD_NOTES, issue 11).
_DRIVER_DISCONNECTS = frozenset({"ConnectionDoesNotExistError", "InternalClientError"})
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "personal_assistant_db")
#: The one table of connect hints, used by the app's startup and by ``pa-db migrate``; ``{url}``
#: names where the URL came from (DATABASE_URL, --database ...).
CONNECT_HINTS = {
    "28P01": "authentication failed: check the user and password in {url}",
    "28000": "the server rejected the user (pg_hba.conf or role): check {url}'s user",
    "3D000": "the database does not exist: create it or fix the name in {url}",
    "42501": "permission denied to connect: grant CONNECT on the database",
    "53300": "the server has no free connection slots (max_connections): retry or lower pool sizes",
    "57P03": "the server is starting up or shutting down: retry shortly",
}
_REFUSED = "connection refused: is PostgreSQL running and listening at {url}'s host and port?"
_TIMED_OUT = "timed out: host unreachable or too slow (see DB_CONNECT_TIMEOUT)"
_NETWORK = "network error while connecting (host name, route or socket path in {url})"
# Drivers that report a failed connect only as text (psycopg's OperationalError): matched here,
# never echoed, since server text may quote the user or the database.
_TEXT_SIGNS = (
    ("password authentication failed", "28P01"),
    ("does not exist", "3D000"),
    ("connection refused", "refused"),
    ("no such file or directory", "refused"),
    ("timeout expired", "timeout"),
    ("could not translate host name", "network"),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([getattr(item, "orig", None), item.__cause__, item.__context__])


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE found anywhere in ``exc``'s chain, or None."""
    for item in _chain(exc):
        code = getattr(item, "sqlstate", None) or getattr(item, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _driver_disconnect(item: BaseException) -> bool:
    name = type(item).__name__
    text = str(item)
    if name == "InternalClientError":
        return "cannot switch to state" in text or "another operation" in text
    if name in _DRIVER_DISCONNECTS:
        return True
    if name == "InterfaceError":
        lowered = text.lower()
        return "closed" in lowered or "connection" in lowered
    return isinstance(item, ConnectionError | EOFError)


def is_disconnect(exc: BaseException) -> bool:
    """True when the connection that raised ``exc`` is gone: discard it, retry on a new one.

    Covers server shutdown/crash (57P01/57P02), connection exceptions (08xxx), reset/broken
    sockets, asyncpg's closed-connection errors and its ``cannot switch to state`` during a
    restart, and a SQLAlchemy error already marked ``connection_invalidated``.
    """
    if getattr(exc, "connection_invalidated", False):
        return True
    code = sqlstate_of(exc)
    if code is not None and code in _DISCONNECT_SQLSTATES:
        return True
    return any(_driver_disconnect(item) for item in _chain(exc))


def is_transient(exc: BaseException) -> bool:
    """True for refused/reset connections, timeouts, disconnects, and SQLSTATEs of a
    busy/restarting server."""
    code = sqlstate_of(exc)
    if code is not None:
        return code in TRANSIENT_SQLSTATES
    if is_disconnect(exc):
        return True
    return any(isinstance(item, OSError | TimeoutError) for item in _chain(exc))


def _raised_by_driver(exc: BaseException) -> bool:
    """A raw OSError/TimeoutError counts only when asyncpg or SQLAlchemy raised it (a host's own
    socket error to, say, a cache is not a database outage)."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def unavailable_cause(exc: BaseException) -> Unavailable | None:
    """Why the database cannot serve right now, or None when ``exc`` may be a bug."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    code = sqlstate_of(exc)
    if code in _RESTART_SQLSTATES:
        return "restarting"
    if code == _QUERY_CANCELED:
        return "timeout"
    if code is not None:
        return "unavailable" if code in TRANSIENT_SQLSTATES else None
    chain = list(_chain(exc))
    if any(type(i).__name__ == "InternalClientError" and _driver_disconnect(i) for i in chain):
        return "restarting"
    if is_disconnect(exc) and (not isinstance(exc, OSError) or _raised_by_driver(exc)):
        return "unavailable"
    for item in chain:
        if isinstance(item, OSError) and (item is not exc or _raised_by_driver(exc)):
            # TimeoutError is an OSError: asyncpg's command_timeout, or a connect timeout
            return "timeout" if isinstance(item, TimeoutError) else "unavailable"
    return None


def connect_hint(exc: BaseException, url: str = "DATABASE_URL") -> str:
    """A safe, actionable hint for a failed connect. Never contains the server's message text."""
    code = sqlstate_of(exc)
    if code in CONNECT_HINTS:
        return f"{CONNECT_HINTS[code].format(url=url)} (SQLSTATE {code})"
    if code is not None:
        return f"server refused the connection (SQLSTATE {code})"
    for item in _chain(exc):
        if isinstance(item, ConnectionRefusedError | FileNotFoundError):
            return _REFUSED.format(url=url)
        if isinstance(item, TimeoutError):
            return _TIMED_OUT
        if isinstance(item, OSError):
            return _NETWORK.format(url=url)
    text = " ".join(str(item) for item in _chain(exc)).lower()
    for sign, kind in _TEXT_SIGNS:
        if sign in text:
            if kind in CONNECT_HINTS:
                return CONNECT_HINTS[kind].format(url=url)
            return {"refused": _REFUSED, "timeout": _TIMED_OUT, "network": _NETWORK}[kind].format(
                url=url
            )
    return "unexpected error while connecting (is the server running and the host/port right?)"


def describe(exc: BaseException) -> tuple[str, str]:
    """(cause class name, a safe hint). Never returns the server's own message text."""
    innermost = exc
    for item in _chain(exc):
        innermost = item
        if getattr(item, "sqlstate", None) or isinstance(item, OSError):
            break
    return type(innermost).__name__, connect_hint(exc)
