"""/health and /health/metrics with read replicas: per-node pools, lag as warn, gauges."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import Database, Telemetry
from personal_assistant_db.health.history import make_snapshot
from personal_assistant_db.testing import ReplicaTopology, started_database

TOKEN = "t0ken-for-health-details-1234"


@asynccontextmanager
async def client(db: Database, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    host = Starlette(routes=[Mount("/health", app=db.health_app(**kwargs))])
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def env_for(topo: ReplicaTopology, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_REPLICA_URLS": ",".join(s.url for s in topo.standbys),
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        "DB_HEALTH_TOKEN": TOKEN,
        "DB_HEALTH_TTL": "0",
        "DB_HEALTH_FAIL_TTL": "0",
        **extra,
    }


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {within:g}s")


async def test_pool_route_lists_every_node(replica_topology: ReplicaTopology) -> None:
    topo = replica_topology
    async with started_database(topo.primary.url, **env_for(topo)) as db, client(db) as c:
        public = (await c.get("/health/pool")).json()
        entries = public["checks"]["pool:utilization"]
        assert [e["componentId"] for e in entries] == ["primary", "replica-1", "replica-2"]
        assert all("details" not in e for e in entries)  # addresses need the token
        auth = {"Authorization": f"Bearer {TOKEN}"}
        detailed = (await c.get("/health/pool", headers=auth)).json()
        details = [e["details"] for e in detailed["checks"]["pool:utilization"]]
        assert [(d["role"], d["server.port"]) for d in details] == [
            ("primary", topo.primary.port),
            *(("replica", s.port) for s in topo.standbys),
        ]


async def test_a_lagging_replica_is_warn_and_readiness_stays_up(
    replica_topology: ReplicaTopology,
) -> None:
    topo = replica_topology
    behind = topo.standbys[0]
    env = env_for(topo, DB_REPLICA_MAX_LAG_MS="200")
    async with started_database(topo.primary.url, **env) as db, client(db) as c:
        await wait_for(lambda: all(n.in_rotation for n in db.replicas.nodes))
        ready = (await c.get("/health/ready")).json()
        assert ready["status"] == "pass"
        topo.pause_replay(behind)
        try:
            async with db.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO items VALUES (50000) ON CONFLICT DO NOTHING"
                )
            await wait_for(lambda: db.replicas.nodes[0].state == "lagging")
            response = await c.get("/health/ready")
            assert response.status_code == 200
            body = response.json()
            assert body["status"] == "warn"
            lag = {e["componentId"]: e for e in body["checks"]["replica:lag"]}
            assert lag["replica-1"]["status"] == "warn"
            assert lag["replica-1"]["observedValue"] > 200
            assert lag["replica-1"]["counts"]["inRotation"] == 0
            page = (await c.get("/health/dashboard")).text
            assert "replay lag over DB_REPLICA_MAX_LAG_MS" in page
            assert lag["replica-2"]["status"] == "pass"
        finally:
            topo.resume_replay(behind)
        await wait_for(lambda: db.replicas.nodes[0].state == "ok")
        assert (await c.get("/health/ready")).json()["status"] == "pass"


async def test_metrics_carry_nodes_and_lag(replica_topology: ReplicaTopology) -> None:
    topo = replica_topology
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with started_database(topo.primary.url, **env_for(topo)) as db:
        telemetry = Telemetry(db, tracer_provider=provider)
        try:
            for _ in range(4):
                async with db.read() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            async with db.begin() as conn:
                await conn.exec_driver_sql("SELECT 2")
            async with client(db, telemetry=telemetry) as c:
                text = (await c.get("/health/metrics")).text
                page = (await c.get("/health/dashboard")).text
        finally:
            telemetry.close()
    # Every engine is traced, and each span names the node that ran it.
    ports = Counter(s.attributes["server.port"] for s in exporter.get_finished_spans())
    assert set(ports) == {topo.primary.port, *(s.port for s in topo.standbys)}
    assert sum(ports[s.port] for s in topo.standbys) == 4
    # The dashboard shows each replica's lag check.
    assert "replica:lag (replica-1)" in page and "replica:lag (replica-2)" in page
    port = topo.standbys[0].port
    lines = text.splitlines()

    def has(*parts: str) -> bool:
        return any(all(p in line for p in parts) for line in lines)

    assert has("db_replica_lag_seconds", f'server_port="{port}"')
    assert has("db_replica_lag_bytes", f'server_port="{port}"')
    assert has("db_replica_in_rotation", f'server_port="{port}"', "} 1.0")
    assert has("db_client_connection_count", 'db_role="replica"', f'server_port="{port}"')
    assert has("db_client_connection_count", 'db_role="primary"')
    # Queries on each replica are measured on that replica's own series.
    assert has("db_client_operation_duration_seconds_count", f'server_port="{port}"')
    assert set(telemetry.latency_by_node()) == {
        "primary",
        *(f"127.0.0.1:{s.port}" for s in topo.standbys),
    }


async def test_history_keeps_one_timeline_per_node(replica_topology: ReplicaTopology) -> None:
    topo = replica_topology
    async with started_database(topo.primary.url, **env_for(topo)) as db:
        await wait_for(lambda: all(n.in_rotation for n in db.replicas.nodes))
        health = db.health_app()
        report = await health.state.runner.run(health.state.monitor.checks)
        snapshot = make_snapshot(at=0.0, results=report.results, pool=None, latency=None)
    names = [c.name for c in snapshot.checks]
    assert "pool:utilization (primary)" in names
    assert "replica:lag (replica-1)" in names and "replica:lag (replica-2)" in names
    assert len(names) == len(set(names))
