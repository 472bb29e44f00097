"""Helpers shared by the doctor tests: a started Database on a URL, DDL, and a stats flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text

from personal_assistant_db import Database, Report, analyze


@asynccontextmanager
async def started(url: str, **env: str) -> AsyncIterator[Database]:
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test", **env})
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


async def run_sql(db: Database, *statements: str) -> None:
    async with db.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def doctor(db: Database, **kwargs: Any) -> Report:
    async with db.connect() as conn:
        return await analyze(conn, application_name=db.settings.application_name, **kwargs)


async def flush_stats(db: Database, table: str, at_least: int) -> None:
    """Make this backend's scan counts visible: PG 15+ can force the flush; 13/14 report every
    500 ms, so poll (a version check, not a retry on errors)."""
    async with db.connect() as conn:
        version = int((await conn.exec_driver_sql("SHOW server_version_num")).scalar_one())
        if version >= 150000:
            await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        await conn.commit()
    for _ in range(50):
        async with db.connect() as conn:
            seen = (
                await conn.execute(
                    text(
                        "SELECT seq_scan + COALESCE(idx_scan, 0) FROM pg_stat_user_tables "
                        "WHERE relname = :t"
                    ),
                    {"t": table},
                )
            ).scalar_one()
        if seen >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"statistics for {table} never reached {at_least} scans")


def analyses(report: Report) -> set[tuple[str, str]]:
    return {(f.analysis, f.object) for f in report.findings}
