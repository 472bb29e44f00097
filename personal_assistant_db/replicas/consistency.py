"""Read-your-writes: what the current request (or task) last wrote, kept in a contextvar.

A write records a ``WriteMark``: the primary's WAL position after its commit (``lsn``) and the
wall-clock time. The router reads the mark: in ``lsn`` mode a replica may serve the read only once
it has replayed that position; in ``window:N`` mode reads go to the primary for N seconds after
the write. ``ReadYourWritesMiddleware`` (middleware.py) opens a ``Session`` per request and
carries the mark across requests in a cookie or header.

A mark whose ``lsn`` is unknown (a commit seen by the engine's commit event, on a connection the
package did not wrap) is *pending*: reads go to the primary until the mark is resolved, by the
middleware (one ``pg_current_wal_lsn()`` on the primary) or by a lag-monitor sample of the
primary's position taken after the connection went back to the pool.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "Session",
    "WriteMark",
    "current_mark",
    "format_mark",
    "open_session",
    "parse_mark",
    "record_write",
    "resolve_pending",
]


@dataclass(frozen=True)
class WriteMark:
    """A write: WAL position after commit (None: not known yet) and wall-clock seconds."""

    lsn: int | None
    at: float
    monotonic: float = 0.0

    @property
    def pending(self) -> bool:
        return self.lsn is None


class Session:
    """The mutable holder a request shares across its tasks: its latest mark."""

    __slots__ = ("changed", "mark")

    def __init__(self, mark: WriteMark | None = None) -> None:
        self.mark = mark
        self.changed = False


_session: ContextVar[Session | None] = ContextVar("pa_db_read_your_writes", default=None)


def open_session(mark: WriteMark | None = None) -> Session:
    """Start a fresh session in the current context (the middleware calls this per request)."""
    session = Session(mark)
    _session.set(session)
    return session


def record_write(lsn: int | None) -> WriteMark:
    """Record a write in the current session (opening one when there is none)."""
    mark = WriteMark(lsn=lsn, at=time.time(), monotonic=time.monotonic())
    session = _session.get()
    if session is None:
        session = open_session()
    if lsn is None or session.mark is None or session.mark.lsn is None or lsn >= session.mark.lsn:
        session.mark = mark
    session.changed = True
    return mark


def current_mark() -> WriteMark | None:
    session = _session.get()
    return session.mark if session is not None else None


def resolve_pending(lsn: int) -> None:
    """Give the current pending mark the position ``lsn`` (taken after its commit)."""
    session = _session.get()
    if session is not None and session.mark is not None and session.mark.lsn is None:
        session.mark = WriteMark(lsn=lsn, at=session.mark.at, monotonic=session.mark.monotonic)


def format_mark(mark: WriteMark) -> str:
    """``<lsn hex>.<ms since epoch>``: the cookie/header value (no secret: it only routes)."""
    return f"{mark.lsn or 0:x}.{int(mark.at * 1000)}"


def parse_mark(raw: str | None) -> WriteMark | None:
    """The mark in a cookie/header value; None when absent or malformed (never raises)."""
    if not raw or len(raw) > 40:
        return None
    lsn, _, at = raw.strip().partition(".")
    try:
        lsn_value, at_ms = int(lsn, 16), int(at)
    except ValueError:
        return None
    if lsn_value < 0 or at_ms < 0:
        return None
    wall = at_ms / 1000
    # The monotonic clock of another process means nothing here: rebuild it from the wall clock.
    age = max(0.0, time.time() - wall)
    return WriteMark(lsn=lsn_value or None, at=wall, monotonic=time.monotonic() - age)
