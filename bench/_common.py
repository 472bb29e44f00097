"""Shared bench helpers: a fresh database with 100k rows, percentile maths, table printing."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from personal_assistant_db.testing import embedded_server_url, fresh_database

ROWS = 100_000
Runner = Callable[[str], Awaitable[None]]


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return embedded_server_url(os.path.join(tempfile.gettempdir(), "pa-db-bench-embedded"))


@contextmanager
def bench_database(rows: int = ROWS) -> Iterator[str]:
    """A fresh database holding ``bench_items`` (id bigint PK, payload text) with ``rows`` rows."""
    with fresh_database(server_url(), prefix="pa_bench") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_items (id bigint PRIMARY KEY, payload text NOT NULL)")
            conn.execute(
                "INSERT INTO bench_items SELECT g, md5(g::text) FROM generate_series(1, %s) g",
                (rows,),
            )
            conn.execute("VACUUM ANALYZE bench_items")
        yield url


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def drive(
    run_one: Runner, query: str, tasks: int, seconds: float
) -> tuple[float, list[float], float]:
    """Run ``tasks`` workers for ``seconds``; return (queries/s, latencies, CPU s/query)."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            await run_one(query)
            latencies.append(time.perf_counter() - began)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return len(latencies) / wall, latencies, cpu / max(1, len(latencies))
