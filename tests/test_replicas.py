"""Read replicas on a real primary and two real streaming standbys (testing.ReplicaTopology)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant_db import Database
from personal_assistant_db.testing import ReplicaTopology, started_database

PORT = text("SELECT inet_server_port()")


@pytest.fixture(scope="module")
def topo() -> Iterator[ReplicaTopology]:
    with ReplicaTopology(standbys=2) as topology:
        topology.query(topology.primary, "CREATE TABLE items (id int PRIMARY KEY)")
        for standby in topology.standbys:
            topology.wait_caught_up(standby)
        yield topology


def replica_env(topo: ReplicaTopology, **env: str) -> dict[str, str]:
    return {
        "DATABASE_REPLICA_URLS": ",".join(s.url for s in topo.standbys),
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        **env,
    }


@pytest.fixture
async def rdb(topo: ReplicaTopology) -> AsyncIterator[Database]:
    async with started_database(topo.primary.url, **replica_env(topo)) as db:
        yield db


async def served_by(db: Database) -> int:
    async with db.read() as conn:
        port: int = (await conn.execute(PORT)).scalar_one()
        return port


async def test_reads_spread_over_replicas_and_writes_stay_on_the_primary(
    topo: ReplicaTopology, rdb: Database
) -> None:
    ports = Counter([await served_by(rdb) for _ in range(100)])
    assert set(ports) == {s.port for s in topo.standbys}
    assert min(ports.values()) >= 40  # sequential reads alternate between equal replicas
    async with rdb.begin() as conn:
        assert (await conn.execute(PORT)).scalar_one() == topo.primary.port
    async with rdb.connect() as conn:
        assert (await conn.execute(PORT)).scalar_one() == topo.primary.port
    assert [n.role for n in rdb.nodes] == ["primary", "replica", "replica"]
    assert all(n.state == "ok" for n in rdb.replicas.nodes)


async def test_a_write_through_a_read_connection_is_refused(rdb: Database) -> None:
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with rdb.read() as conn:
            await conn.execute(text("INSERT INTO items VALUES (-1)"))


async def test_a_replica_url_that_is_a_primary_gets_no_reads_and_no_writes(
    topo: ReplicaTopology,
) -> None:
    env = {"DATABASE_REPLICA_URLS": topo.primary.url, "DB_REPLICA_CHECK_INTERVAL": "0.1"}
    async with started_database(topo.primary.url, **env) as db:
        (node,) = db.replicas.nodes
        assert node.state == "not_in_recovery"
        assert not node.in_rotation
        assert await served_by(db) == topo.primary.port
        assert db.replicas.router.fallbacks["no_replica"] == 1
        # Even used directly, its sessions are read-only: the primary is never written by mistake.
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with node.started_engine().connect() as conn:
                await conn.execute(text("INSERT INTO items VALUES (-2)"))


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> float:
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not predicate():
        if loop.time() - began > within:
            raise AssertionError(f"condition not met within {within:g}s")
        await asyncio.sleep(0.01)
    return loop.time() - began


async def test_a_lagging_replica_leaves_rotation_and_rejoins(topo: ReplicaTopology) -> None:
    behind, ahead = topo.standbys
    env = replica_env(topo, DB_REPLICA_MAX_LAG_MS="300")
    async with started_database(topo.primary.url, **env) as db:
        slow = next(n for n in db.replicas.nodes if n.port == behind.port)
        topo.pause_replay(behind)
        try:
            async with db.begin() as conn:
                await conn.execute(text("INSERT INTO items VALUES (1000) ON CONFLICT DO NOTHING"))
            await wait_for(lambda: slow.state == "lagging")
            assert slow.lag_seconds is not None and slow.lag_seconds > 0.3
            assert slow.lag_bytes is not None and slow.lag_bytes > 0
            ports = {await served_by(db) for _ in range(20)}
            assert ports == {ahead.port}
        finally:
            topo.resume_replay(behind)
        await wait_for(lambda: slow.state == "ok")
        assert slow.lag_seconds == 0
        ports = {await served_by(db) for _ in range(20)}
        assert ports == {behind.port, ahead.port}


async def test_a_replica_lost_mid_read_is_retried_once_elsewhere(
    topo: ReplicaTopology, rdb: Database
) -> None:
    async def work(conn: AsyncConnection) -> int:
        port = (await conn.execute(PORT)).scalar_one()
        if not seen:
            seen.append(port)
            # The replica's backend for this very connection is killed mid-read.
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            node = next(s for s in topo.standbys if s.port == port)
            topo.query(node, f"SELECT pg_terminate_backend({pid})")
            await conn.execute(text("SELECT 1"))
        return int(port)

    seen: list[int] = []
    port = await rdb.run_read(work)
    assert port != seen[0]
    assert rdb.replicas.router.retries == 1
