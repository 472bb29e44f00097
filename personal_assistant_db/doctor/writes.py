"""Buffer writes by client backends: when queries write dirty pages themselves, the background
writer and the checkpointer fall behind and the writes land on query latency.

PostgreSQL 16 counts them in ``pg_stat_io`` (rows per backend type, object and context); up to
16, ``pg_stat_bgwriter.buffers_backend`` against ``buffers_checkpoint + buffers_clean``
(17 removed those columns). ``Catalog.backend_writes`` says which this server has.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .findings import Finding, Severity

__all__ = ["MIN_WRITES", "read_backend_writes", "writes_findings"]

MIN_WRITES = 10_000
"""Buffers written in all before the share is judged (80 MB of 8 kB pages)."""

_STAT_IO = text("""
SELECT COALESCE(sum(writes) FILTER (WHERE backend_type = 'client backend'), 0)::bigint AS backend,
       COALESCE(sum(writes) FILTER (WHERE backend_type IN ('checkpointer', 'background writer')),
                0)::bigint AS background
FROM pg_stat_io WHERE object = 'relation' AND context = 'normal'
""")
_BGWRITER = text("""
SELECT buffers_backend::bigint AS backend,
       (buffers_checkpoint + buffers_clean)::bigint AS background
FROM pg_stat_bgwriter
""")


async def read_backend_writes(conn: AsyncConnection, view: str) -> dict[str, Any]:
    """``view`` is ``Catalog.backend_writes`` (``pg_stat_io`` or ``pg_stat_bgwriter``)."""
    query = _STAT_IO if view == "pg_stat_io" else _BGWRITER
    row = dict((await conn.execute(query)).mappings().one())
    row["source"] = view
    return row


def writes_findings(row: dict[str, Any]) -> list[Finding]:
    backend, background = int(row["backend"] or 0), int(row["background"] or 0)
    total = backend + background
    if total < MIN_WRITES or backend / total < 0.5:
        return []
    return [
        Finding(
            Severity.INFO,
            "backend_writes",
            "server",
            f"client backends wrote {backend / total:.0%} of {total} shared buffers themselves: "
            "the background writer falls behind, and the writes land on query time",
            {"backend": backend, "background": background, "source": str(row["source"])},
            "bgwriter_lru_maxpages = 400 and bgwriter_delay = '50ms' (reload), or a larger "
            "shared_buffers",
        )
    ]
