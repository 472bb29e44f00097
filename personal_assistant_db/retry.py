"""Which connection errors are worth retrying, and the safe words to report them with.

SQLAlchemy 2.0 passes some asyncpg errors through raw and wraps others in ``DBAPIError``
(2.1 wraps more of them), so the chain of causes is walked for an SQLSTATE or an OSError.
psycopg (``pa-db migrate``) reports connect failures as ``OperationalError`` text without an
SQLSTATE, so its text picks the hint; the text itself is never shown. ``CONNECT_HINTS`` is the one
table both the app and the CLI answer from.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["CONNECT_HINTS", "describe", "is_transient", "sqlstate_of"]

# too many connections, out of memory, server shutting down / starting up, connection failures
TRANSIENT_SQLSTATES = frozenset(
    {"53300", "53400", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}
)
# SQLSTATE (or a failure kind) -> what to do about it.
CONNECT_HINTS = {
    "28P01": "authentication failed: check the user and password in DATABASE_URL",
    "28000": "the server rejected the user (pg_hba.conf or role): check DATABASE_URL's user",
    "3D000": "the database does not exist: create it or fix the name in DATABASE_URL",
    "42501": "permission denied to connect: grant CONNECT on the database",
    "53300": "too many connections: the server is at max_connections (lower DB_POOL_SIZE?)",
    "57P03": "the server is starting up or shutting down: try again shortly",
    "refused": "connection refused: is PostgreSQL running and listening there?",
    "timeout": "timed out: host unreachable or too slow (see DB_CONNECT_TIMEOUT)",
    "network": "network error while connecting (host name, route or socket path)",
}
# Lower-case fragments of libpq's connect errors (psycopg) -> the key in CONNECT_HINTS.
_LIBPQ_TEXT = (
    ("password authentication failed", "28P01"),
    ("no password supplied", "28P01"),
    ("no pg_hba.conf entry", "28000"),
    ("role", "28000"),
    ("database", "3D000"),
    ("too many clients", "53300"),
    ("the database system is", "57P03"),
    ("connection refused", "refused"),
    ("no such file or directory", "refused"),
    ("timeout expired", "timeout"),
    ("could not translate host name", "network"),
    ("name or service not known", "network"),
    ("network is unreachable", "network"),
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


def is_transient(exc: BaseException) -> bool:
    """True for refused/reset connections, timeouts, and SQLSTATEs of a busy/restarting server."""
    code = sqlstate_of(exc)
    if code is not None:
        return code in TRANSIENT_SQLSTATES
    for item in _chain(exc):
        if isinstance(item, OSError | TimeoutError):
            return True
        if type(item).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            "closed" in str(item) or "connection" in str(item).lower()
        ):
            return True
    return False


def _libpq_kind(exc: BaseException) -> str | None:
    if type(exc).__module__.split(".")[0] != "psycopg":
        return None
    text = str(exc).lower()
    for fragment, kind in _LIBPQ_TEXT:
        if fragment in text and (kind not in {"28000", "3D000"} or "does not exist" in text):
            return kind
    return None


def describe(exc: BaseException) -> tuple[str, str]:
    """(cause class name, a safe hint from CONNECT_HINTS). Never the server's own text."""
    code = sqlstate_of(exc)
    innermost = exc
    for item in _chain(exc):
        innermost = item
        if getattr(item, "sqlstate", None) or isinstance(item, OSError):
            break
    name = type(innermost).__name__
    if code is None:
        code = _libpq_kind(innermost)
    if code in CONNECT_HINTS:
        suffix = f" (SQLSTATE {code})" if code[0].isdigit() else ""
        return name, CONNECT_HINTS[code] + suffix
    if code is not None:
        return name, f"server refused the connection (SQLSTATE {code})"
    if isinstance(innermost, ConnectionRefusedError | FileNotFoundError):
        return name, CONNECT_HINTS["refused"]
    if isinstance(innermost, TimeoutError):
        return name, CONNECT_HINTS["timeout"]
    if isinstance(innermost, OSError):
        return name, CONNECT_HINTS["network"]
    return name, "unexpected error while connecting"
