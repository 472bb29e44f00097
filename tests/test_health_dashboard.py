"""/health/dashboard: the public view as a page a person reads; escaped, no scripts, real data."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import CheckResult, Database, Telemetry
from personal_assistant_db.testing import ThrowawayServer

TOKEN = "dashboard-token-123456789"


@asynccontextmanager
async def client(health: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/health", app=health)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@dataclass
class HostileCheck:
    """A host check whose name and observed value carry markup: they must arrive as text."""

    name: str = "cache:<script>alert(1)</script>"
    timeout: float = 0.5
    critical: bool = False

    async def run(self) -> CheckResult:
        return CheckResult(
            self.name, "warn", 0.001, observed_value="<b>9</b>", details={"secret": "s3cr3t-x"}
        )


async def test_dashboard_shows_checks_latency_and_escapes_everything(
    test_env: dict[str, str],
) -> None:
    db = Database.from_env({**test_env, "DB_HEALTH_TOKEN": TOKEN})
    telemetry = Telemetry(db, tracing=False)
    await db.start()
    try:
        async with db.connect() as conn:
            for _ in range(5):
                await conn.exec_driver_sql("SELECT 1")
        app = db.health_app(telemetry=telemetry, checks=[HostileCheck()])
        async with client(app) as c:
            page = await c.get("/health/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
            head = await c.head("/health/dashboard")
    finally:
        await db.stop()
        telemetry.close()
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    assert "<script>" not in html
    assert "cache:&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;9&lt;/b&gt;" in html
    assert "s3cr3t-x" not in html  # details stay out, token or not
    assert ">database:responseTime<" in html or "database:" in html
    assert "<td>SELECT</td>" in html  # the telemetry P50/P95/P99 row for our queries
    assert 'http-equiv="refresh"' in html
    assert head.status_code == 200
    assert head.content == b""


async def test_dashboard_turns_503_when_the_database_is_down(
    throwaway_server: ThrowawayServer,
) -> None:
    db = Database.from_env({"DATABASE_URL": throwaway_server.url, "DB_ENV": "test"})
    await db.start()
    try:
        app = db.health_app()
        throwaway_server.stop()
        async with client(app) as c:
            began = time.perf_counter()
            page = await c.get("/health/dashboard")
            took = time.perf_counter() - began
    finally:
        await db.stop()
    assert page.status_code == 503
    assert ">fail<" in page.text
    # Bounded by the health deadline, not a connect timeout (2x: a loaded machine's slack).
    assert took < 2 * db.settings.health_timeout
