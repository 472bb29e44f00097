"""One savepoint per analysis: a query the server refuses becomes an ERROR finding naming what
could not be read, and the other analyses go on. A lost connection ends the run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import AnalysisError
from .findings import Finding, Severity

__all__ = ["Sections", "reason"]

T = TypeVar("T")


def reason(error: exc.DBAPIError) -> tuple[str, str | None]:
    orig = error.orig
    inner = orig.__cause__ if orig is not None and orig.__cause__ is not None else orig
    message = str(inner).splitlines()[0] if inner is not None else type(error).__name__
    sqlstate = getattr(inner, "sqlstate", None) or getattr(orig, "pgcode", None)
    return message, sqlstate


class Sections:
    """Runs each analysis in its own savepoint; a refused query becomes an ERROR finding."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.findings: list[Finding] = []
        self.failed: list[str] = []

    async def run(self, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        try:
            async with self.conn.begin_nested():
                return await fn()
        except exc.DBAPIError as error:
            message, sqlstate = reason(error)
            if error.connection_invalidated:  # not a refused query: the analysis cannot go on
                raise AnalysisError(f"lost the connection while reading {what}") from error
            self.failed.append(what)
            self.findings.append(
                Finding(
                    Severity.ERROR,
                    "unreadable",
                    what,
                    f"could not read {what}: {message}",
                    {"sqlstate": sqlstate},
                    "run the doctor as a role with pg_read_all_stats (GRANT pg_read_all_stats TO "
                    "<role>;) or as the owner of the objects",
                )
            )
            return None
