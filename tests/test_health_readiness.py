"""Readiness means "can serve": pool timeouts within a window fail it, saturation only warns,
and every fail's error id leads to a log line with the real cause."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import pytest
import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.routing import Mount
from structlog.testing import capture_logs

from personal_assistant_db.testing import ThrowawayServer, started_database


async def test_checkout_timeouts_fail_readiness_for_the_window_with_the_cause_logged(
    make_database: Callable[[], str],
) -> None:
    env = {
        "DB_POOL_SIZE": "1",
        "DB_POOL_TIMEOUT": "0.1",
        "DB_HEALTH_POOL_WINDOW": "1",
        "DB_HEALTH_TTL": "0",
        "DB_HEALTH_FAIL_TTL": "0",
    }
    async with started_database(make_database(), **env) as db:
        host = Starlette(routes=[Mount("/health", app=db.health_app())])
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            async with db.connect() as held:
                await held.exec_driver_sql("SELECT 1")
                saturated = (await c.get("/health/ready")).json()
                assert saturated["status"] == "warn"  # busy, not failing: no timeout yet
                with pytest.raises(sqlalchemy.exc.TimeoutError):
                    async with db.connect():
                        pass
            with capture_logs() as logs:
                r = await c.get("/health/ready")
            assert r.status_code == 503
            [pool] = r.json()["checks"]["pool:utilization"]
            assert pool["status"] == "fail" and pool["counts"]["recentTimeouts"] == 1
            [line] = [e for e in logs if e.get("error_id") == pool["errorId"]]
            assert line["error_class"] == "PoolTimeout"
            assert line["reason"].startswith("1 pool checkout timeout(s) in the last 1s")
            await asyncio.sleep(1.1)  # the window passes: ready again without any restart
            assert (await c.get("/health/ready")).status_code == 200


async def test_a_saturated_pool_shows_its_reason_on_the_dashboard(
    make_database: Callable[[], str],
) -> None:
    async with started_database(make_database(), DB_HEALTH_TTL="0") as db, AsyncExitStack() as s:
        for _ in range(db.settings.pool_size):
            conn = await s.enter_async_context(db.connect())
            await conn.exec_driver_sql("SELECT 1")
        host = Starlette(routes=[Mount("/health", app=db.health_app())])
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            page = await c.get("/health/dashboard")
        assert page.status_code == 200
        assert "<th>reason</th>" in page.text
        assert "pool saturated: all 5 connections in use" in page.text


async def test_saturation_never_hides_a_dead_database(throwaway_server: ThrowawayServer) -> None:
    """Every slot checked out, then the server stops: the probe still reaches for the database
    (on its reserved connection) and readiness fails. Before, a saturated pool skipped the probe
    and answered ``warn``, i.e. ready, whatever the database's state."""
    env = {"DB_POOL_SIZE": "2", "DB_HEALTH_TTL": "0", "DB_HEALTH_FAIL_TTL": "0"}
    async with started_database(throwaway_server.url, **env) as db, AsyncExitStack() as held:
        for _ in range(2):
            conn = await held.enter_async_context(db.connect())
            await conn.exec_driver_sql("SELECT 1")
        host = Starlette(routes=[Mount("/health", app=db.health_app())])
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            alive = await c.get("/health/ready")
            assert alive.status_code == 200 and alive.json()["status"] == "warn"
            await asyncio.to_thread(throwaway_server.stop, "immediate")
            dead = await c.get("/health/ready")
        assert dead.status_code == 503
        [database] = dead.json()["checks"]["database:responseTime"]
        assert database["status"] == "fail"
        with contextlib.suppress(Exception):  # the held connections died with the server
            await held.aclose()
