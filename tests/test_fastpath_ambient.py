"""Ambient transactions on a real PostgreSQL: inside ``async with db.transaction():`` the statement
API of the same task joins the block; child tasks do not; several tasks sharing ``tx`` take turns;
exceptions, cancellations and failed commits roll everything back and leave nothing checked out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from personal_assistant_db import Database, DatabaseNotStarted, WrongEventLoop
from personal_assistant_db.testing import started_database

MD = sa.MetaData()
ITEMS = sa.Table(
    "amb_items",
    MD,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
)
COUNT = sa.select(sa.func.count()).select_from(ITEMS)


@pytest.fixture
async def adb(make_database: object) -> AsyncIterator[Database]:
    url = make_database()  # type: ignore[operator]
    async with started_database(url, DB_POOL_SIZE="5") as db:
        async with db.begin() as conn:
            await conn.run_sync(MD.create_all)
        yield db


def _add(i: int) -> sa.Insert:
    return sa.insert(ITEMS).values(id=i, label=f"item {i}")


async def _backend(db: Database) -> int:
    return int(await db.fetch_val(sa.text("SELECT pg_backend_pid()")))


async def test_every_statement_call_in_the_block_joins_and_rolls_back_with_it(
    adb: Database,
) -> None:
    inside = 0

    async def block() -> None:
        nonlocal inside
        async with adb.transaction():
            inside = await _backend(adb)
            await adb.execute(_add(1))
            many = [{"id": 2, "label": "b"}, {"id": 3, "label": "c"}]
            await adb.execute_many(sa.insert(ITEMS), many)
            assert await adb.fetch_val(COUNT) == 3
            rows = await adb.fetch_all(sa.select(ITEMS).order_by(ITEMS.c.id))
            assert [r.id for r in rows] == [1, 2, 3]
            assert await adb.fetch_one(sa.select(ITEMS.c.label).where(ITEMS.c.id == 2)) == ("b",)
            assert [r.id async for r in adb.iterate(sa.select(ITEMS.c.id), batch=2)] == [1, 2, 3]
            assert await _backend(adb) == inside
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await block()
    assert await adb.fetch_val(COUNT) == 0
    assert adb.pool_stats().used == 0


async def test_a_row_locked_by_the_block_is_updated_in_it_not_waited_on(adb: Database) -> None:
    """Without joining, an UPDATE of a row the block has locked waits on its own transaction."""
    await adb.execute(_add(1))
    async with adb.transaction() as tx:
        await tx.execute(sa.update(ITEMS).where(ITEMS.c.id == 1).values(label="tx"))
        async with asyncio.timeout(5):
            assert (
                await adb.execute(sa.update(ITEMS).where(ITEMS.c.id == 1).values(label="db")) == 1
            )
    assert await adb.fetch_val(sa.select(ITEMS.c.label)) == "db"


async def test_a_nested_transaction_is_a_savepoint(adb: Database) -> None:
    async with adb.transaction():
        await adb.execute(_add(1))

        async def savepoint() -> None:
            async with adb.transaction():
                await adb.execute(_add(2))
                assert await adb.fetch_val(COUNT) == 2
                raise LookupError

        with pytest.raises(LookupError):
            await savepoint()
        assert await adb.fetch_val(COUNT) == 1
        async with adb.transaction() as inner:
            await inner.execute(_add(3))
    assert sorted(r.id for r in await adb.fetch_all(sa.select(ITEMS.c.id))) == [1, 3]


async def test_child_tasks_do_not_join_unless_handed_tx(adb: Database) -> None:
    async with adb.transaction() as tx:
        mine = await _backend(adb)
        child = await asyncio.create_task(_backend(adb))
        handed = await asyncio.create_task(tx.fetch_val(sa.text("SELECT pg_backend_pid()")))
        await adb.execute(_add(1))
        seen_by_child = await asyncio.create_task(adb.fetch_val(COUNT))
    assert child != mine and handed == mine
    assert seen_by_child == 0  # the child's own connection does not see uncommitted rows


async def test_the_decorator_runs_each_call_in_a_transaction_of_its_own(adb: Database) -> None:
    @adb.transaction()
    async def add_two(first: int, fail: bool = False) -> int:
        await adb.execute(_add(first))
        await adb.execute(_add(first + 1))
        if fail:
            raise ValueError("no")
        return int(await adb.fetch_val(COUNT))

    assert await add_two(1) == 2
    with pytest.raises(ValueError, match="no"):
        await add_two(3, fail=True)
    assert await asyncio.gather(add_two(10), add_two(20)) in ([4, 6], [6, 4])
    assert await adb.fetch_val(COUNT) == 6
    assert adb.pool_stats().used == 0


async def test_connect_inside_the_block_is_separate_and_says_so_once(adb: Database) -> None:
    with capture_logs() as logs:
        async with adb.transaction():
            await adb.execute(_add(1))
            for _ in range(2):
                async with adb.connect() as conn:
                    assert (await conn.execute(COUNT)).scalar() == 0
    warned = [e for e in logs if e["event"] == "db.connect.outside_transaction"]
    assert len(warned) == 1 and "separate connection" in warned[0]["hint"]


async def test_a_cancelled_block_rolls_back_everything_that_joined(adb: Database) -> None:
    started = asyncio.Event()

    async def work() -> None:
        async with adb.transaction():
            await adb.execute(_add(1))
            started.set()
            await adb.fetch_val(sa.text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(work())
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await adb.fetch_val(COUNT) == 0
    assert adb.pool_stats().used == 0

    async def timed_out() -> None:
        async with asyncio.timeout(0.2), adb.transaction():
            await adb.execute(_add(2))
            await adb.fetch_val(sa.text("SELECT pg_sleep(30)"))

    with pytest.raises(TimeoutError):
        await timed_out()
    assert await adb.fetch_val(COUNT) == 0
    assert adb.pool_stats().used == 0


async def test_several_tasks_on_one_tx_take_turns(adb: Database) -> None:
    """asyncpg refuses a second operation in flight; the calls are serialized instead."""
    async with adb.transaction() as tx:
        pids = await asyncio.gather(
            *(
                tx.fetch_val(sa.text("SELECT pg_backend_pid() FROM pg_sleep(0.01)"))
                for _ in range(10)
            ),
            *(tx.execute(_add(i)) for i in range(10)),
        )
        async with aclosing(
            tx.iterate(sa.select(ITEMS.c.id).order_by(ITEMS.c.id), batch=3)
        ) as rows:
            streamed = [r.id async for r in rows]
        assert len(set(pids[:10])) == 1
    assert streamed == list(range(10))
    assert await adb.fetch_val(COUNT) == 10


async def test_a_failed_commit_raises_sqlalchemys_error_and_returns_nothing(adb: Database) -> None:
    """Write skew under SERIALIZABLE: the second commit fails with a serialization failure."""
    await adb.execute(_add(1))
    first_read = asyncio.Event()
    second_read = asyncio.Event()

    async def skew(mine: int, wait: asyncio.Event, tell: asyncio.Event) -> None:
        async with adb.transaction():
            await adb.execute(sa.text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
            await adb.fetch_val(COUNT)
            tell.set()
            await wait.wait()
            await adb.execute(_add(mine))

    results = await asyncio.gather(
        skew(2, second_read, first_read), skew(3, first_read, second_read), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], DBAPIError), results
    assert getattr(failures[0].orig, "sqlstate", None) == "40001"
    assert adb.pool_stats().used == 0
    assert await adb.fetch_val(COUNT) == 2


async def test_a_transaction_after_stop_is_refused_and_leaks_nothing(adb: Database) -> None:
    block = adb.transaction()
    await adb.stop()
    with pytest.raises(DatabaseNotStarted, match="start"):
        async with block:
            pass
    await adb.start()
    async with adb.transaction():
        await adb.execute(_add(1))
    assert adb.pool_stats().used == 0


async def test_a_transaction_on_another_event_loop_is_refused(adb: Database) -> None:
    async def elsewhere() -> None:
        async with adb.transaction():
            pass

    with pytest.raises(WrongEventLoop, match="another event loop"):
        await asyncio.to_thread(asyncio.run, elsewhere())
    assert adb.pool_stats().used == 0
    async with adb.transaction():
        assert await adb.fetch_val(COUNT) == 0


async def test_two_databases_do_not_join_each_others_blocks(
    adb: Database, make_database: object
) -> None:
    url = make_database()  # type: ignore[operator]
    async with started_database(url) as other:
        async with adb.transaction():
            mine = await _backend(adb)
            theirs = await _backend(other)
            assert await other.fetch_val(
                sa.text("SELECT current_database()")
            ) != await adb.fetch_val(sa.text("SELECT current_database()"))
        assert mine != theirs
