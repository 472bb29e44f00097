"""The /health mount's background work in a real host: started by the Database, gone after it.

``Mount`` never runs a sub-app's lifespan, so the alert monitor and the webhook worker hang off the
Database's hooks. A host app with ``lifespan=db.lifespan`` runs under asgi-lifespan's
LifespanManager (the real ASGI lifespan protocol) against a real PostgreSQL and a real local HTTP
receiver; the tests check what an operator would notice: alerts arrive while probes stay fast,
and nothing (task or connection) is left behind after shutdown or a restart of the Database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import psycopg
from asgi_lifespan import LifespanManager
from health_helpers import receiving
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import AlertEvent, AlertRule, Database, WebhookSink

BACKGROUND = ("pa-db-health-monitor", "pa-db-alert-webhook", "health:", "pa-db-health:")


_EARLIER: set[asyncio.Task[object]] = set()


def background_tasks() -> list[str]:
    """Names of health/alert tasks alive on this loop that earlier tests did not leave behind
    (another test's deliberately hung host check may still be sleeping: never cancelled)."""
    return sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if not t.done() and t.get_name().startswith(BACKGROUND) and t not in _EARLIER
    )


def forget_earlier_tasks() -> None:
    _EARLIER.clear()
    _EARLIER.update(asyncio.all_tasks())


def backends(url: str, application_name: str) -> int:
    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            (application_name, database),
        ).fetchone()
    assert row is not None
    return int(row[0])


def always_firing() -> AlertRule:
    """A host rule that fires on the first evaluation (the metric is constant 1.0)."""
    return AlertRule("host_rule", lambda obs: 1.0, fire_above=0.5, clear_below=0.5)


async def test_alerts_reach_slow_sinks_while_probes_stay_fast_and_shutdown_leaves_nothing(
    make_database: Callable[[], str],
) -> None:
    forget_earlier_tasks()
    url = make_database()
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test", "DB_HEALTH_TTL": "0.2"})
    hung: list[AlertEvent] = []

    async def hanging_sink(event: AlertEvent) -> None:
        hung.append(event)
        await asyncio.sleep(30)  # a broken sink: the manager gives up after sink_timeout

    with receiving(delay=1.0) as receiver:  # a slow webhook receiver
        webhook = WebhookSink(receiver.url, timeout=3)
        health = db.health_app(alert_rules=[always_firing()], alert_sinks=[hanging_sink, webhook])
        host = Starlette(routes=[Mount("/health", app=health)], lifespan=db.lifespan)
        async with LifespanManager(host) as manager:
            # Started by the Database's start hook, before any request arrived.
            assert "pa-db-health-monitor" in background_tasks()
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(50):
                    if hung:
                        break
                    await asyncio.sleep(0.05)
                assert [e.rule for e in hung] == ["host_rule"]
                # The monitor is stuck in the hanging sink and the webhook POST takes 1 s: probes
                # are answered from the request path, within the deadline, meanwhile.
                for _ in range(10):
                    began = time.perf_counter()
                    r = await c.get("/health/")
                    assert time.perf_counter() - began < db.settings.health_timeout
                    assert r.status_code == 200
                    assert [a["rule"] for a in r.json()["alerts"]] == ["host_rule"]
                    await asyncio.sleep(0.05)
        # Shutdown: the stop hook stopped the monitor and drained the webhook queue.
        assert [b["rule"] for b in receiver.bodies] == ["host_rule"]
        assert [b["state"] for b in receiver.bodies] == ["firing"]
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    assert background_tasks() == []
    assert backends(url, db.settings.application_name) == 0


async def test_a_restarted_database_restarts_the_monitor_and_probes_follow(
    make_database: Callable[[], str],
) -> None:
    forget_earlier_tasks()
    url = make_database()
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test"})
    health = db.health_app()
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/health", app=health)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for _ in range(2):
            await db.start()
            assert "pa-db-health-monitor" in background_tasks()
            # A failure seen while stopped is cached for DB_HEALTH_FAIL_TTL at most.
            began = time.perf_counter()
            while (await c.get("/health/ready")).status_code != 200:
                assert time.perf_counter() - began < db.settings.health_fail_ttl + 0.3
                await asyncio.sleep(0.05)
            await db.stop()
            await asyncio.sleep(0)
            assert background_tasks() == []
            # A stopped Database: readiness fails (no engine), liveness does not depend on it.
            assert (await c.get("/health/live")).status_code == 200
            await asyncio.sleep(db.settings.health_ttl)
            r = await c.get("/health/ready")
            assert r.status_code == 503
            assert "postgres" not in r.text
            await asyncio.sleep(0)
            # Probes on a stopped Database start no loop that nothing would ever stop.
            assert background_tasks() == []


async def test_stopping_the_database_mid_probe_leaves_no_connection_open(
    make_database: Callable[[], str],
) -> None:
    # A probe blocked on a lock is abandoned by the request (past the deadline) but still holds
    # its connection when the Database stops. The stop hook lets it finish (statement_timeout ends
    # it) before the engine is disposed: returned after dispose(), it would stay open, unowned.
    forget_earlier_tasks()
    url = make_database()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE TABLE _yoyo_migration (migration_id text, applied_at_utc timestamp)")
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test"})
    await db.start()
    health = db.health_app(require_migrations=True)
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/health", app=health)]))
    try:
        with psycopg.connect(url) as locker:  # holds the lock until its transaction ends
            locker.execute("LOCK TABLE _yoyo_migration IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                began = time.perf_counter()
                r = await c.get("/health/ready")
                assert time.perf_counter() - began < db.settings.health_timeout + 0.1
            entry = r.json()["checks"]["database:pendingMigrations"][0]
            assert (r.status_code, entry["status"]) == (503, "fail")
            assert db.pool_stats().used == 1  # the abandoned probe, waiting on the lock
            await db.stop()
            locker.rollback()
    finally:
        await db.stop()
    await asyncio.sleep(0.5)
    assert backends(url, db.settings.application_name) == 0
    assert background_tasks() == []
