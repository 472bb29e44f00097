"""The /health mount through real HTTP (httpx.ASGITransport) on a real PostgreSQL.

Routes, health+json shape, status codes, HEAD, text format, token gate, host checks, telemetry
(/metrics, query P95) and the migrations check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from personal_assistant_db import CheckResult, Database, Telemetry
from personal_assistant_db.health.app import _authorized
from personal_assistant_db.migrate import apply
from personal_assistant_db.testing import started_database as started

TOKEN = "t0ken-for-health-details-1234"
ROUTES = ["/health/", "/health/live", "/health/ready", "/health/database", "/health/pool"]


@asynccontextmanager
async def client(health: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    host = Starlette(routes=[Mount("/health", app=health)])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@dataclass
class StaticCheck:
    """A host's own check (stands in for e.g. Redis): returns ``status`` after ``delay``."""

    name: str
    status: str = "pass"
    delay: float = 0.0
    critical: bool = True
    timeout: float = 0.7
    raises: bool = False

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        await asyncio.sleep(self.delay)
        if self.raises:
            raise RuntimeError("redis://:hunter2@cache.internal:6379 refused")
        return CheckResult(self.name, self.status, time.perf_counter() - began)  # type: ignore[arg-type]


async def test_every_route_answers_health_json(db: Database) -> None:
    async with client(db.health_app()) as c:
        for path in ROUTES:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == "application/health+json"
            assert r.headers["cache-control"] == "no-store"
            body = r.json()
            assert body["status"] == "pass"
            for key, entries in body["checks"].items():
                assert ":" in key
                for e in entries:
                    assert {"status", "time", "observedValue", "observedUnit"} <= e.keys()
        overview = (await c.get("/health/")).json()
        assert {"process:eventLoopLag", "database:responseTime", "pool:utilization"} <= set(
            overview["checks"]
        )
        assert overview["alerts"] == []
        live = (await c.get("/health/live")).json()
        assert list(live["checks"]) == ["process:eventLoopLag"]
        assert (await c.get("/health/metrics")).status_code == 404  # no telemetry given


async def test_pool_route_shows_the_snapshot_publicly(db: Database) -> None:
    async with db.connect() as held, client(db.health_app()) as c:
        await held.exec_driver_sql("SELECT 1")
        entry = (await c.get("/health/pool")).json()["checks"]["pool:utilization"][0]
    stats = db.pool_stats()
    counts = entry["counts"]
    assert counts["used"] == 1 and counts["capacity"] == stats.capacity
    assert counts["overflow"] == 0 and counts["waiting"] == 0 and counts["timeouts"] == 0
    assert 0 <= counts["waitP95Ms"] < 1000 and 0 <= counts["efficiency"] <= 1
    assert entry["observedUnit"] == "percent"
    assert entry["observedValue"] == round(100 / stats.capacity, 1)
    assert "details" not in entry  # pool internals (size, created, closed...) need the token


async def test_head_gives_status_without_body(db: Database) -> None:
    async with client(db.health_app(checks=[StaticCheck("cache:ping", "fail")])) as c:
        for path, code in [("/health/live", 200), ("/health/ready", 503)]:
            r = await c.head(path)
            assert r.status_code == code
            assert r.content == b""
            assert r.headers["cache-control"] == "no-store"


async def test_text_format_lists_each_check(db: Database) -> None:
    async with client(db.health_app(checks=[StaticCheck("cache:ping", "fail")])) as c:
        r = await c.get("/health/ready", params={"format": "text"})
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert lines[0] == "[+]database:responseTime ok"
    assert lines[1] == "[+]pool:utilization ok"
    assert lines[2].startswith("[-]cache:ping failed: reason withheld (error id ")
    assert lines[-1] == "readyz check failed"


async def test_token_unlocks_details_and_wrong_token_gets_public_view(
    test_env: dict[str, str],
) -> None:
    db = Database.from_env({**test_env, "DB_HEALTH_TOKEN": TOKEN})
    await db.start()
    try:
        async with client(db.health_app()) as c:
            public = await c.get("/health/database")
            assert "details" not in public.text and "server_version" not in public.text
            for header in [f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, ""]:
                r = await c.get("/health/database", headers={"Authorization": header})
                assert r.status_code == 200, header
                assert "details" not in r.text, header
            r = await c.get("/health/database", headers={"Authorization": f"Bearer {TOKEN}"})
            entry = r.json()["checks"]["database:responseTime"][0]
            assert entry["details"]["server_version"][:2].isdigit()
            pool = await c.get("/health/pool", headers={"Authorization": f"bearer {TOKEN}"})
            assert "wait_p95" in pool.json()["checks"]["pool:utilization"][0]["details"]
            assert "wait_p95" not in (await c.get("/health/pool")).text
    finally:
        await db.stop()


def _request(authorization: str) -> Request:
    headers = [(b"authorization", authorization.encode("latin-1"))]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_only_the_exact_token_authorizes(given_token: str) -> None:
    expected = given_token.strip() == TOKEN
    assert _authorized(_request(f"Bearer {given_token}"), TOKEN) is expected
    assert _authorized(_request(f"Bearer {given_token}"), None) is False


async def test_host_checks_join_readiness(db: Database) -> None:
    ok = StaticCheck("cache:ping")
    async with client(db.health_app(checks=[ok])) as c:
        body = (await c.get("/health/ready")).json()
        assert body["checks"]["cache:ping"][0]["status"] == "pass"
    soft = StaticCheck("search:ping", "fail", critical=False)
    async with client(db.health_app(checks=[soft])) as c:
        r = await c.get("/health/ready")
        assert (r.status_code, r.json()["status"]) == (200, "warn")
    broken = StaticCheck("cache:ping", raises=True)
    async with client(db.health_app(checks=[broken])) as c:
        r = await c.get("/health/ready", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 503
        entry = r.json()["checks"]["cache:ping"][0]
        assert entry["status"] == "fail" and len(entry["errorId"]) == 12
        assert "hunter2" not in r.text and "cache.internal" not in r.text
        assert "RuntimeError" not in r.text


async def test_checks_run_concurrently_and_a_hung_check_meets_the_deadline(db: Database) -> None:
    # Three 0.3 s checks fit the 0.8 s deadline only if they run side by side.
    slow = [StaticCheck(f"dep{i}:ping", delay=0.3) for i in range(3)]
    hung = StaticCheck("hung:ping", delay=30)
    async with client(db.health_app(checks=[*slow, hung])) as c:
        began = time.perf_counter()
        r = await c.get("/health/ready")
        took = time.perf_counter() - began
    checks = r.json()["checks"]
    assert [checks[f"dep{i}:ping"][0]["status"] for i in range(3)] == ["pass"] * 3
    assert checks["hung:ping"][0]["status"] == "fail"
    assert r.status_code == 503
    # Answered at the deadline, not after the hung check's 30 s (2x: a loaded machine's slack).
    assert took < 2 * db.settings.health_timeout


async def test_duplicate_check_names_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="a:b"):
        db.health_app(checks=[StaticCheck("a:b"), StaticCheck("a:b")])


async def test_telemetry_serves_metrics_and_query_p95(test_env: dict[str, str]) -> None:
    db = Database.from_env({**test_env, "DB_HEALTH_TOKEN": TOKEN, "DB_METRICS_REQUIRE_TOKEN": "1"})
    telemetry = Telemetry(db, tracing=False)
    await db.start()
    try:
        async with db.connect() as conn:
            for _ in range(20):
                await conn.exec_driver_sql("SELECT 1")
        queries = sum(v.count for v in telemetry.latency_snapshot().values())
        async with client(db.health_app(telemetry=telemetry)) as c:
            body = (await c.get("/health/database")).json()
            p95 = body["checks"]["database:queryP95"][0]
            assert p95["observedUnit"] == "ms" and p95["observedValue"] > 0
            assert p95["counts"]["queries"] == queries
            await c.get("/health/")  # more probes: telemetry must not count them
            assert (await c.get("/health/metrics")).status_code == 401
            r = await c.get("/health/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            assert "db_client_operation_duration" in r.text
        assert sum(v.count for v in telemetry.latency_snapshot().values()) == queries
    finally:
        await db.stop()
        telemetry.close()


async def test_migrations_gate_readiness_when_asked(make_database: Callable[[], str]) -> None:
    url = make_database()
    async with started(url, DB_HEALTH_FAIL_TTL="0") as db:
        async with client(db.health_app()) as c:
            assert (await c.get("/health/ready")).status_code == 200  # not asked: not checked
        async with client(db.health_app(require_migrations=True)) as c:
            r = await c.get("/health/ready")
            assert r.status_code == 503
            pending = r.json()["checks"]["database:pendingMigrations"][0]
            assert pending["status"] == "fail" and pending["observedValue"] > 0
            await asyncio.to_thread(apply, url)
            r = await c.get("/health/ready")
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["database:pendingMigrations"][0]["observedValue"] == 0
