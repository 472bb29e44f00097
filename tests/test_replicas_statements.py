"""The statement API (fetch_*, iterate, execute, transaction) with read replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy import text

from personal_assistant_db import Database
from personal_assistant_db.replicas.consistency import open_session
from personal_assistant_db.testing import ReplicaTopology, started_database

PORT = text("SELECT inet_server_port()")
ITEMS = sa.table("items", sa.column("id"))


@contextlib.asynccontextmanager
async def replicated(topo: ReplicaTopology, **env: str) -> AsyncIterator[Database]:
    open_session()  # a fresh read-your-writes session per cluster (see test_replicas.replicated)
    env = {
        "DATABASE_REPLICA_URLS": ",".join(s.url for s in topo.standbys),
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        **env,
    }
    async with started_database(topo.primary.url, **env) as db:
        for _ in range(500):
            if all(n.state != "starting" for n in db.replicas.nodes):
                break
            await asyncio.sleep(0.01)
        yield db


async def test_fetches_spread_over_replicas_and_writes_stay_on_the_primary(
    replica_topology: ReplicaTopology,
) -> None:
    topo = replica_topology
    open_session()
    async with replicated(topo, DB_READ_YOUR_WRITES="off") as db:
        ports = Counter([await db.fetch_val(PORT) for _ in range(60)])
        assert set(ports) == {s.port for s in topo.standbys}
        assert min(ports.values()) >= 20
        rows = [row async for row in db.iterate(text("SELECT inet_server_port() AS p"))]
        assert rows[0].p in {s.port for s in topo.standbys}
        # A statement that writes never goes to a replica, whichever method carries it.
        insert = sa.insert(ITEMS).values(id=70_000).returning(ITEMS.c.id)
        assert await db.fetch_val(insert) == 70_000
        marked = text("SELECT inet_server_port() AS p").execution_options(pa_db_write=True)
        assert await db.fetch_val(marked) == topo.primary.port
        assert await db.execute(sa.delete(ITEMS).where(ITEMS.c.id == 70_000)) == 1
        async with db.transaction() as tx:
            assert await tx.fetch_val(PORT) == topo.primary.port


async def test_statement_api_reads_its_own_writes_while_replay_is_paused(
    replica_topology: ReplicaTopology,
) -> None:
    topo = replica_topology
    standby = topo.standbys[0]
    open_session()
    env = {"DATABASE_REPLICA_URLS": standby.url, "DB_REPLICA_MAX_LAG_MS": "600000"}
    async with replicated(topo, **env) as db:
        (node,) = db.replicas.nodes
        assert await db.fetch_val(PORT) == standby.port
        topo.pause_replay(standby)
        stale = 0
        try:
            for i in range(300):
                key = 80_000 + i
                if i % 3 == 0:
                    await db.execute(sa.insert(ITEMS).values(id=key))
                elif i % 3 == 1:
                    await db.fetch_one(sa.insert(ITEMS).values(id=key).returning(ITEMS.c.id))
                else:
                    async with db.transaction() as tx:
                        await tx.execute(sa.insert(ITEMS).values(id=key))
                found = await db.fetch_val(
                    sa.select(sa.func.count()).select_from(ITEMS).where(ITEMS.c.id == key)
                )
                stale += found != 1
        finally:
            topo.resume_replay(standby)
        assert stale == 0
        assert node.in_rotation  # only the marks kept the reads on the primary
        # Once the monitor has seen the primary past the writes and the replica replay them,
        # reads go back to the replica.
        for _ in range(500):
            if await db.fetch_val(PORT) == standby.port:
                break
            await asyncio.sleep(0.01)
        assert await db.fetch_val(PORT) == standby.port


async def test_a_fetch_whose_replica_connection_dies_runs_once_more_elsewhere(
    replica_topology: ReplicaTopology,
) -> None:
    topo = replica_topology
    open_session()
    async with replicated(topo, DB_READ_YOUR_WRITES="off") as db:
        first = await db.fetch_val(PORT)
        victim = next(s for s in topo.standbys if s.port == first)
        # Every pooled connection of ours on that replica is cut.
        topo.query(
            victim,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'personal-assistant-db' AND pid <> pg_backend_pid()",
        )
        node = next(n for n in db.replicas.nodes if n.port == victim.port)
        db.replicas.router._turn = db.replicas.nodes.index(node)  # the next read picks it
        port = await db.fetch_val(PORT)
        assert port != victim.port
        assert db.replicas.router.retries == 1
        assert node.state == "unreachable"
