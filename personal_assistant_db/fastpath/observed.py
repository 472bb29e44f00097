"""One statement on a lease, as the query hook records it: the one copy of the observer wrapper.

``execute_on``, ``execute_many_on`` and ``Transaction.iterate`` each send one statement and
hand the awaitable here: with telemetry attached it gets a span (when sampled) and a duration,
as the engine hook records a statement on the SQLAlchemy path; a driver error becomes the
error ``Connection`` would raise (``Lease.error``), with the DBAPI error under it recorded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..telemetry.tracing import QueryObserver
    from .lease import Lease

__all__ = ["observed"]

T = TypeVar("T")


async def observed(
    observer: QueryObserver | None,
    lease: Lease,
    sql: str,
    args: Any,
    work: Awaitable[T],
    *,
    many: bool = False,
) -> T:
    """``await work`` (``sql`` with ``args`` on ``lease``), recorded by ``observer`` if any."""
    if observer is None:
        try:
            return await work
        except Exception as exc:
            failure = lease.error(exc, sql, args, many)
            raise failure from failure.orig
    stmt = observer.statement(sql)
    span = observer.start(stmt)
    started = time.perf_counter()
    try:
        result = await work
    except Exception as exc:
        failure = lease.error(exc, sql, args, many)
        # What the engine hook sees on the SQLAlchemy path: the DBAPI error under the wrapper.
        observer.failed(stmt, span, time.perf_counter() - started, failure.orig or failure)
        raise failure from failure.orig
    except BaseException as exc:  # cancelled: recorded as such, the connection is discarded
        observer.failed(stmt, span, time.perf_counter() - started, exc)
        raise
    observer.succeeded(stmt, span, started)
    return result
