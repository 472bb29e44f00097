"""The write path's pieces for read-your-writes and failover: the commit event hooks that record
a pending mark, the primary's WAL position after a commit, and "no host accepts writes"."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from .consistency import record_write
from .node import lsn_to_int

__all__ = ["flag_commit", "no_writable_host", "record_pending", "wal_position"]

_WROTE = "pa_db_committed"


def no_writable_host(exc: BaseException) -> bool:
    """asyncpg reached every host and none accepts writes (``target_session_attrs``)."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error itself, or SQLAlchemy's wrapper around it
        if seen is None:
            return False
        if type(seen).__name__ == "TargetServerAttributeNotMatched":
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


async def wal_position(conn: AsyncConnection) -> int | None:
    """The primary's ``pg_current_wal_lsn()``: one round trip on the driver (no BEGIN)."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    lsn = await driver.fetchval("SELECT pg_current_wal_lsn()::text")
    return lsn_to_int(lsn)


def flag_commit(conn: Any) -> None:
    """The engine's ``commit`` event (fires *before* COMMIT): flag the connection."""
    conn.connection.record_info[_WROTE] = True  # record_info: checkin sees the same dict


def record_pending(dbapi_connection: Any, record: Any) -> None:
    """The pool's ``checkin`` event: a flagged connection committed (the COMMIT is done by
    now), so the session gets a pending mark."""
    info = record.record_info
    if info is not None and info.pop(_WROTE, None):
        record_write(None)
