"""Read replicas on a real primary and two real streaming standbys (testing.ReplicaTopology)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from personal_assistant_db import Database, DatabaseNotStarted, ReadYourWritesMiddleware
from personal_assistant_db.replicas import is_write
from personal_assistant_db.replicas.consistency import open_session
from personal_assistant_db.testing import ReplicaTopology, started_database

PORT = text("SELECT inet_server_port()")


@pytest.fixture
def topo(replica_topology: ReplicaTopology) -> ReplicaTopology:
    return replica_topology


@contextlib.asynccontextmanager
async def replicated(url: str, **env: str) -> AsyncIterator[Database]:
    """A started Database whose replicas have had their first lag verdict (ok).

    Each test starts its own cluster, so it starts a fresh read-your-writes session too: a mark
    left by an earlier test (another cluster's LSN, in a context the test loop carries over)
    would otherwise send reads to the primary."""
    open_session()
    async with started_database(url, **env) as db:
        await wait_for(lambda: all(n.state != "starting" for n in db.replicas.nodes))
        yield db


def replica_env(topo: ReplicaTopology, **env: str) -> dict[str, str]:
    return {
        "DATABASE_REPLICA_URLS": ",".join(s.url for s in topo.standbys),
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        **env,
    }


@pytest.fixture
async def rdb(topo: ReplicaTopology) -> AsyncIterator[Database]:
    async with replicated(topo.primary.url, **replica_env(topo)) as db:
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
    async with replicated(topo.primary.url, **env) as db:
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
    async with replicated(topo.primary.url, **env) as db:
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


def one_replica_env(topo: ReplicaTopology, mode: str) -> dict[str, str]:
    # A lag limit no test reaches: only read-your-writes keeps reads off the paused replica.
    return {
        "DATABASE_REPLICA_URLS": topo.standbys[0].url,
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        "DB_REPLICA_MAX_LAG_MS": "600000",
        "DB_READ_YOUR_WRITES": mode,
    }


async def write_then_read(db: Database, key: int, *, via_connect: bool = False) -> tuple[bool, int]:
    """Insert ``key`` on the primary, read it back through ``db.read()``: (seen, served port)."""
    if via_connect:
        async with db.connect() as conn:
            await conn.execute(text("INSERT INTO items VALUES (:k)"), {"k": key})
            await conn.commit()
    else:
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO items VALUES (:k)"), {"k": key})
    async with db.read() as conn:
        row = await conn.execute(
            text("SELECT count(*), inet_server_port() FROM items WHERE id = :k"), {"k": key}
        )
        count, port = row.one()
    return count == 1, port


async def test_read_your_writes_lsn_never_reads_stale_while_replay_is_paused(
    topo: ReplicaTopology,
) -> None:
    standby = topo.standbys[0]
    open_session()
    async with replicated(topo.primary.url, **one_replica_env(topo, "lsn")) as db:
        (node,) = db.replicas.nodes
        assert await served_by(db) == standby.port  # no write yet: the replica serves
        topo.pause_replay(standby)
        try:
            results = [
                await write_then_read(db, 10_000 + i, via_connect=i % 10 == 0) for i in range(1000)
            ]
        finally:
            topo.resume_replay(standby)
        stale = sum(1 for seen, _ in results if not seen)
        assert stale == 0
        assert {port for _, port in results} == {topo.primary.port}
        assert node.in_rotation  # it was in rotation all along: only the marks kept reads away
        assert db.replicas.router.fallbacks["read_your_writes"] >= 1000
        # Replay resumed: once the monitor sees the replica past the last write, reads go back.
        await wait_for(lambda: db.replicas.router.choose() is node)
        assert await served_by(db) == standby.port


async def test_without_read_your_writes_the_same_reads_are_stale(topo: ReplicaTopology) -> None:
    """The control: the check above can fail."""
    standby = topo.standbys[0]
    open_session()
    async with replicated(topo.primary.url, **one_replica_env(topo, "off")) as db:
        topo.pause_replay(standby)
        try:
            results = [await write_then_read(db, 20_000 + i) for i in range(20)]
        finally:
            topo.resume_replay(standby)
    assert sum(1 for seen, _ in results if not seen) == 20


async def test_window_mode_reads_the_primary_for_the_window(topo: ReplicaTopology) -> None:
    standby = topo.standbys[0]
    open_session()
    env = one_replica_env(topo, "window:0.5")
    async with replicated(topo.primary.url, **env) as db:
        seen, port = await write_then_read(db, 30_000)
        assert (seen, port) == (True, topo.primary.port)
        await asyncio.sleep(0.6)
        assert await served_by(db) == standby.port


async def test_middleware_carries_the_mark_across_requests(topo: ReplicaTopology) -> None:
    standby = topo.standbys[0]

    async def write(request: Request) -> JSONResponse:
        db = request.state.personal_assistant_db
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO items VALUES (40000)"))
        return JSONResponse({})

    async def read(request: Request) -> JSONResponse:
        db = request.state.personal_assistant_db
        return JSONResponse({"port": await served_by(db)})

    async with replicated(topo.primary.url, **one_replica_env(topo, "lsn")) as db:
        app = Starlette(
            routes=[Route("/write", write, methods=["POST"]), Route("/read", read)],
            middleware=[Middleware(ReadYourWritesMiddleware, db=db)],
            lifespan=lambda app: _state(db),
        )
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://t") as writer,
                httpx.AsyncClient(transport=transport, base_url="http://t") as other,
            ):
                topo.pause_replay(standby)
                try:
                    response = await writer.post("/write")
                    assert "pa_db_rw" in response.cookies
                    assert response.headers["x-pa-db-rw"]
                    # The writer's next request reads its write (primary); a stranger's does not
                    # need to, and goes to the replica.
                    assert (await writer.get("/read")).json()["port"] == topo.primary.port
                    assert (await other.get("/read")).json()["port"] == standby.port
                    # The header works without the cookie.
                    mark = response.headers["x-pa-db-rw"]
                    headers = {"X-PA-DB-RW": mark}
                    got = await other.get("/read", headers=headers)
                    assert got.json()["port"] == topo.primary.port
                finally:
                    topo.resume_replay(standby)
                await wait_for(lambda: (db.replicas.nodes[0].replay_lsn or 0) >= _lsn(mark))
                assert (await writer.get("/read")).json()["port"] == standby.port


@contextlib.asynccontextmanager
async def _state(db: Database) -> AsyncIterator[dict[str, Database]]:
    yield {"personal_assistant_db": db}


def _lsn(mark: str) -> int:
    return int(mark.split(".")[0], 16)


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        (text("SELECT 1"), False),
        (text("  insert into t values (1)"), True),
        (text("UPDATE t SET x = 1"), True),
        (text("WITH x AS (SELECT 1) SELECT * FROM x"), False),
        (text("SELECT * FROM t FOR UPDATE"), True),
        (text("SELECT nextval('s')").execution_options(pa_db_write=True), True),
        ("DELETE FROM t", True),
        ("", False),
    ],
)
def test_is_write(statement: object, writes: bool) -> None:
    assert is_write(statement) is writes


def test_is_write_on_core_statements() -> None:
    table = sa.table("t", sa.column("id"))
    assert is_write(sa.insert(table).values(id=1))
    assert is_write(sa.update(table).values(id=2))
    assert is_write(sa.delete(table))
    assert is_write(sa.select(table).with_for_update())
    assert not is_write(sa.select(table))


@pytest.mark.parametrize("pre_ping", [False, True])
async def test_an_unreachable_replica_leaves_rotation_and_rejoins(
    pre_ping: bool, postgres_bindir: Path | None
) -> None:
    with ReplicaTopology(standbys=1, bindir=postgres_bindir) as topo:
        standby = topo.standbys[0]
        env = {
            "DATABASE_REPLICA_URLS": standby.url,
            "DB_REPLICA_CHECK_INTERVAL": "0.1",
            "DB_POOL_PRE_PING": str(pre_ping).lower(),
        }
        async with replicated(topo.primary.url, **env) as db:
            (node,) = db.replicas.nodes
            assert await served_by(db) == standby.port
            topo.stop(standby, "fast")
            if pre_ping:
                # The checkout's ping finds the dead connection, reconnecting is refused: the
                # read goes to the primary at once, counted as a retry.
                assert await served_by(db) == topo.primary.port
                assert db.replicas.router.retries == 1
            else:
                # Without pre-ping the first read gets the pooled connection the stop closed:
                # the error reaches the caller (db.read() cannot replay its block).
                with pytest.raises(DBAPIError) as caught:
                    await served_by(db)
                assert caught.value.connection_invalidated
            assert node.state == "unreachable"  # out of rotation at once, either way
            assert await served_by(db) == topo.primary.port
            assert db.replicas.router.fallbacks["no_replica"] >= 1
            standby.start()
            await wait_for(lambda: node.state == "ok")
            assert await served_by(db) == standby.port


async def test_middleware_resolves_a_pending_mark_and_survives_a_dead_primary(
    postgres_bindir: Path | None,
) -> None:
    """A commit on a db.connect() connection is pending: the middleware reads the primary's
    position for the cookie; if the primary died meanwhile, the response still goes out."""
    with ReplicaTopology(standbys=1, bindir=postgres_bindir) as topo:
        topo.query(topo.primary, "CREATE TABLE t (i int)")
        env = {"DATABASE_REPLICA_URLS": topo.standbys[0].url, "DB_REPLICA_CHECK_INTERVAL": "5"}
        async with replicated(topo.primary.url, **env) as db:

            async def write(request: Request) -> JSONResponse:
                async with db.connect() as conn:
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
                    await conn.commit()
                if request.query_params.get("kill"):
                    topo.stop(topo.primary)
                return JSONResponse({})

            app = Starlette(
                routes=[Route("/", write, methods=["POST"])],
                middleware=[Middleware(ReadYourWritesMiddleware, db=db)],
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                resolved = await client.post("/")
                assert _lsn(resolved.headers["x-pa-db-rw"]) > 0
                orphan = await client.post("/?kill=1")
            assert orphan.status_code == 200
            assert _lsn(orphan.headers["x-pa-db-rw"]) == 0  # still pending: primary reads


async def test_first_write_after_an_idle_spell_is_not_read_as_the_idle_time(
    topo: ReplicaTopology,
) -> None:
    """now() - pg_last_xact_replay_timestamp() is the whole idle spell for the first unreplayed
    WAL; the monitor bounds it by the time since it last saw the replica caught up."""
    standby = topo.standbys[0]
    # The lag limit leaves room for a loaded machine between the insert and the checks (the
    # synchronous psycopg query below blocks the loop); the idle spell is twice the limit.
    max_lag = 2.0
    env = {
        "DATABASE_REPLICA_URLS": standby.url,
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
        "DB_REPLICA_MAX_LAG_MS": str(int(max_lag * 1000)),
    }
    async with replicated(topo.primary.url, **env) as db:
        (node,) = db.replicas.nodes
        await asyncio.sleep(2 * max_lag)  # idle: no commit for longer than the limit
        assert node.state == "ok" and node.lag_seconds == 0
        topo.pause_replay(standby)
        try:
            async with db.begin() as conn:
                await conn.execute(text("INSERT INTO items VALUES (60000) ON CONFLICT DO NOTHING"))
            raw = topo.query(
                standby,
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
            )
            # what the bare formula would report: the idle spell, past the limit
            assert isinstance(raw, float) and raw > 2 * max_lag
            checks = node.checks
            await wait_for(lambda: node.checks >= checks + 2)
            assert node.lag_seconds is not None and node.lag_seconds < max_lag
            assert node.state == "ok"
            # Still paused: the bound grows with time, and the replica leaves on schedule.
            await wait_for(lambda: node.state == "lagging")
        finally:
            topo.resume_replay(standby)


async def test_read_before_start_names_the_problem(topo: ReplicaTopology) -> None:
    db = Database.from_env({"DATABASE_URL": topo.primary.url, **replica_env(topo)})
    with pytest.raises(DatabaseNotStarted):
        db.read()
    with pytest.raises(DatabaseNotStarted):
        await db.run_read(lambda conn: conn.scalar(PORT))
    assert [n.engine for n in db.nodes] == [None, None, None]
