"""``db.force_rollback()`` on a real PostgreSQL: one pinned connection for every task, the
statement API, ``db.connect()``, ``db.begin()`` and savepoints inside it, all rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant_db import Database
from personal_assistant_db.testing import started_database

MD = sa.MetaData()
ITEMS = sa.Table(
    "pin_items",
    MD,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
)
COUNT = sa.select(sa.func.count()).select_from(ITEMS)
PID = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
async def pdb(make_database: object) -> AsyncIterator[Database]:
    url = make_database()  # type: ignore[operator]
    async with started_database(url, DB_POOL_SIZE="5") as db:
        async with db.begin() as conn:
            await conn.run_sync(MD.create_all)
        yield db


def _add(i: int) -> sa.Insert:
    return sa.insert(ITEMS).values(id=i, label=f"item {i}")


async def test_everything_inside_is_one_connection_and_rolled_back(pdb: Database) -> None:
    assert pdb.pinned_connection is None
    async with pdb.force_rollback():
        pinned = pdb.pinned_connection
        assert isinstance(pinned, AsyncConnection)
        pid = await pdb.fetch_val(PID)
        await pdb.execute(_add(1))
        await pdb.execute_many(sa.insert(ITEMS), [{"id": 2, "label": "b"}])
        async with pdb.transaction():  # a savepoint of the pin
            await pdb.execute(_add(3))
        async with pdb.begin() as conn:
            await conn.execute(_add(4))
            assert (await conn.execute(PID)).scalar() == pid
        async with pdb.connect() as conn:
            await conn.execute(_add(5))
            await conn.commit()  # releases its savepoint: the outer transaction stays
            await conn.execute(_add(6))  # not committed: rolled back at close
        others = await asyncio.gather(*(asyncio.create_task(pdb.fetch_val(PID)) for _ in range(5)))
        assert set(others) == {pid}
        assert (await pinned.execute(COUNT)).scalar() == 5
        assert sorted(r.id for r in await pdb.fetch_all(sa.select(ITEMS.c.id))) == [1, 2, 3, 4, 5]
    assert pdb.pinned_connection is None
    assert await pdb.fetch_val(COUNT) == 0
    assert pdb.pool_stats().used == 0


async def test_a_failing_savepoint_and_a_failing_begin_roll_back_only_themselves(
    pdb: Database,
) -> None:
    async def failing_transaction() -> None:
        async with pdb.transaction():
            await pdb.execute(_add(2))
            raise KeyError

    async def failing_begin() -> None:
        async with pdb.begin() as conn:
            await conn.execute(_add(3))
            raise KeyError

    async with pdb.force_rollback():
        await pdb.execute(_add(1))
        with pytest.raises(KeyError):
            await failing_transaction()
        with pytest.raises(KeyError):
            await failing_begin()
        assert await pdb.fetch_val(COUNT) == 1
    assert await pdb.fetch_val(COUNT) == 0


async def test_concurrent_tasks_take_turns_on_the_pinned_connection(pdb: Database) -> None:
    async def writer(i: int) -> None:
        async with pdb.transaction():
            await pdb.execute(_add(i))
        await pdb.fetch_val(sa.text("SELECT pg_sleep(0.005)"))

    async with pdb.force_rollback():
        await asyncio.gather(*(writer(i) for i in range(20)))
        assert await pdb.fetch_val(COUNT) == 20
    assert await pdb.fetch_val(COUNT) == 0
    assert pdb.pool_stats().used == 0


async def test_the_pin_cannot_be_nested_and_its_connection_goes_back(pdb: Database) -> None:
    async def nested() -> None:
        async with pdb.force_rollback(), pdb.force_rollback():
            pass

    with pytest.raises(RuntimeError, match="already active"):
        await nested()
    assert pdb.pinned_connection is None
    assert pdb.pool_stats().used == 0


async def test_an_orm_session_bound_to_the_pinned_connection_is_rolled_back_too(
    pdb: Database,
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async with pdb.force_rollback():
        pinned = pdb.pinned_connection
        assert pinned is not None
        async with AsyncSession(bind=pinned) as session:
            await session.execute(_add(1))
            await session.commit()  # a savepoint of the pin ("conservative_savepoint")
        assert await pdb.fetch_val(COUNT) == 1  # the statement API sees the session's row
    assert await pdb.fetch_val(COUNT) == 0
