"""Helpers shared by the doctor tests: a started Database on a URL, DDL, and a stats flush."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant_db import Database, Report, analyze


async def run_sql(db: Database, *statements: str) -> None:
    async with db.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def doctor(db: Database, **kwargs: Any) -> Report:
    async with db.connect() as conn:
        return await analyze(conn, application_name=db.settings.application_name, **kwargs)


async def force_flush(conn: AsyncConnection) -> None:
    """Ask this backend to publish its statistics when its transaction ends. PG 15+ has
    pg_stat_force_next_flush(); 13/14 publish every 500 ms anyway (a version check, not a
    caught error). Callers then poll with ``wait_for_scans``."""
    version = int((await conn.exec_driver_sql("SHOW server_version_num")).scalar_one())
    if version >= 150000:
        await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")


async def wait_for_scans(db: Database, table: str, at_least: int) -> None:
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
