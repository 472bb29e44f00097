"""Transient database failures, served as ``503`` instead of a bare ``500``.

``exception_handlers(db)`` (also ``db.exception_handlers()``) is a plain dict for Starlette's
and FastAPI's ``exception_handlers=``. Starlette's ExceptionMiddleware calls a handler inside the
route stack and *sends its response*: no re-raise, so uvicorn keeps the keep-alive connection
open and logs no traceback. A handler keyed by exception class costs nothing on the happy path
(a middleware would wrap every request). For each caught exception, ``failures.unavailable_cause``
decides:

- a transient cause (pool checkout timeout, database refusing/unreachable/restarting, command or
  statement timeout) -> ``503`` + ``Retry-After`` + ``application/problem+json`` (RFC 9457),
  and one rate-limited log line per cause per ``DB_ERROR_LOG_INTERVAL`` with a count
  (``logs.CauseLog``);
- anything else is re-raised: it stays a ``500`` with its traceback (it may be a bug).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from .failures import Unavailable, describe, unavailable_cause

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .database import Database

__all__ = ["PROBLEM_JSON", "Handler", "exception_handlers", "problem_body"]

PROBLEM_JSON = "application/problem+json"
Handler = Callable[["Request", Exception], Coroutine[Any, Any, "Response"]]

_DETAIL: Mapping[Unavailable, str] = {
    "pool_timeout": "every database connection is busy; retry shortly",
    "restarting": "the database is restarting; retry shortly",
    "unavailable": "the database is unavailable; retry shortly",
    "timeout": "the database did not answer in time; retry shortly",
}


def problem_body(cause: Unavailable) -> bytes:
    """The RFC 9457 problem document for a 503 (no server text, no URL)."""
    body = {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": _DETAIL[cause],
        "cause": cause,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def exception_handlers(db: Database) -> dict[Any, Handler]:
    """``{exception class: handler}`` for ``Starlette(exception_handlers=...)`` or FastAPI's.

    Merge with your own: ``{**db.exception_handlers(), MyError: my_handler}``.
    """
    import asyncpg
    from sqlalchemy import exc as sa_exc
    from starlette.responses import Response

    retry_after = str(db.settings.retry_after)
    causes = db.unavailable_log

    async def handle(request: Request, exc: Exception) -> Response:
        cause = unavailable_cause(exc)
        if cause is None or request.scope.get("type") != "http":
            raise exc  # unknown: a 500 with its traceback, as before
        if cause != "pool_timeout":  # the pool logs its own timeouts (with its statistics)
            error_class, hint = describe(exc)
            causes.record(cause, error_class=error_class, hint=hint)
        headers = {"Retry-After": retry_after, "Cache-Control": "no-store"}
        return Response(problem_body(cause), 503, headers, PROBLEM_JSON)

    classes: list[type[BaseException]] = [
        sa_exc.TimeoutError,  # pool checkout timeout
        sa_exc.StatementError,  # wrapped driver errors (DBAPIError; the fast path's timeouts)
        asyncpg.PostgresError,  # raw server errors (SQLAlchemy 2.0 passes some through)
        asyncpg.InterfaceError,  # raw driver errors: closed connection, ...
        asyncpg.exceptions.InternalClientError,  # "cannot switch to state" during a restart
        OSError,  # refused/reset connections, and TimeoutError (command timeout)
    ]
    return dict.fromkeys(classes, handle)
