"""Fast path and SQLAlchemy path are equivalent, on real PostgreSQL, for generated data and
statements: equal rows (values, types and keys), equal row counts, equal exception classes.

The table has JSONB, an integer array, an enum, a UUID, a Numeric, a timestamptz and a
TypeDecorator; statements use expanding IN (empty lists too), literals taken from the cache
key, None, RETURNING and text(). Both paths run on the same started Database, on an event loop
of this module's own (Hypothesis drives a synchronous test).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql as pg

from personal_assistant_db import Database
from personal_assistant_db.testing import fresh_database


class Mood(enum.Enum):
    calm = "calm"
    busy = "busy"
    away = "away"


class Folded(sa.TypeDecorator[str]):
    """Stored lower-case, read back in brackets: proves both processors run on both paths."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.lower()

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else f"<{value}>"


MD = sa.MetaData()


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        MD,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("doc", pg.JSONB),
        sa.Column("tags", pg.ARRAY(sa.Integer)),
        sa.Column("mood", sa.Enum(Mood, name="eq_mood")),
        sa.Column("ref", sa.Uuid),
        sa.Column("amount", sa.Numeric(14, 2)),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("label", Folded),
    )


FAST, SLOW = _table("eq_fast"), _table("eq_slow")  # written by the fast / SQLAlchemy path

text_ = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)
json_ = st.dictionaries(
    text_, st.none() | st.booleans() | st.integers(-(2**31), 2**31) | text_, max_size=3
)
row_ = st.fixed_dictionaries(
    {
        "doc": st.none() | json_,
        "tags": st.none() | st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4),
        "mood": st.none() | st.sampled_from(Mood),
        "ref": st.none() | st.uuids(),
        "amount": st.none()
        | st.decimals(-(10**9), 10**9, places=2, allow_nan=False, allow_infinity=False),
        "at": st.none()
        | st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)),
        "label": st.none() | text_,
    }
)
rows_ = st.lists(row_, max_size=6).map(lambda rows: [{"id": i, **r} for i, r in enumerate(rows)])


@pytest.fixture(scope="module")
def env(server_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    loop = asyncio.new_event_loop()
    with fresh_database(server_url, prefix="pa_eq") as url:
        db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test"})
        loop.run_until_complete(db.start())
        try:
            loop.run_until_complete(_create(db))
            yield loop, db
        finally:
            loop.run_until_complete(db.stop())
            loop.close()


async def _create(db: Database) -> None:
    async with db.begin() as conn:
        await conn.run_sync(MD.create_all)


def run(env: tuple[asyncio.AbstractEventLoop, Database], coro: Coroutine[Any, Any, Any]) -> Any:
    return env[0].run_until_complete(coro)


async def sqla_all(db: Database, statement: Any, params: Any = None) -> list[Any]:
    async with db.engine.begin() as conn:
        return list((await conn.execute(statement, params)).all())


def same_rows(fast: list[Any], slow: list[Any]) -> None:
    assert fast == slow
    assert [r._fields for r in fast] == [r._fields for r in slow]
    assert [[type(v) for v in r] for r in fast] == [[type(v) for v in r] for r in slow]


async def outcome(call: Coroutine[Any, Any, Any]) -> tuple[str, Any]:
    try:
        return "ok", await call
    except Exception as exc:
        return "error", (type(exc), type(getattr(exc, "orig", None)))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=rows_,
    picked=st.lists(st.integers(-1, 7), max_size=4),
    amount=st.decimals(-(10**6), 10**6, places=2, allow_nan=False, allow_infinity=False),
    mood=st.sampled_from(Mood),
    word=text_,
    when=st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
    many=st.booleans(),
)
def test_fast_path_and_sqlalchemy_path_agree(
    env: tuple[asyncio.AbstractEventLoop, Database],
    rows: list[dict[str, Any]],
    picked: list[int],
    amount: Decimal,
    mood: Mood,
    word: str,
    when: dt.datetime,
    many: bool,
) -> None:
    db = env[1]
    run(env, db.execute(sa.text("TRUNCATE eq_fast, eq_slow")))

    async def write() -> None:
        if rows and many:
            await db.execute_many(sa.insert(FAST), rows)
        for row in [] if many else rows:
            assert await db.execute(sa.insert(FAST), row) == 1
        if rows:
            async with db.engine.begin() as conn:
                await conn.execute(sa.insert(SLOW), rows)

    run(env, write())
    # what each path wrote, read back by SQLAlchemy, is the same
    fast_rows = run(env, sqla_all(db, sa.select(FAST).order_by(FAST.c.id)))
    slow_rows = run(env, sqla_all(db, sa.select(SLOW).order_by(SLOW.c.id)))
    same_rows(fast_rows, slow_rows)

    first = rows[0]["ref"] if rows else uuid.uuid4()
    queries: list[tuple[Any, Any]] = [
        (sa.select(FAST).order_by(FAST.c.id), None),
        (sa.select(FAST.c.id, FAST.c.label).where(FAST.c.id.in_(picked)).order_by("id"), None),
        (sa.select(FAST).where(FAST.c.amount > amount).order_by(FAST.c.id), None),
        (sa.select(FAST.c.id).where(FAST.c.mood == mood).order_by(FAST.c.id), None),
        (sa.select(FAST.c.id).where(FAST.c.mood.is_(None)).order_by(FAST.c.id), None),
        (sa.select(FAST.c.id, FAST.c.at).where(FAST.c.at < when).order_by(FAST.c.id), None),
        (sa.select(FAST.c.id).where(FAST.c.ref == first), None),
        (sa.select(FAST.c.id).where(FAST.c.label == word), None),
        (sa.select(FAST.c.doc["k"].astext.label("k"), FAST.c.tags[1].label("t1")), None),
        (sa.select(sa.func.count(), sa.func.sum(FAST.c.amount)).select_from(FAST), None),
        (sa.select(FAST.c.id).where(FAST.c.amount == sa.bindparam("a")), {"a": amount}),
        (
            sa.text("SELECT id, doc, tags, amount FROM eq_fast WHERE id = ANY(:ids)"),
            {"ids": picked},
        ),
        (sa.text("SELECT :w AS w, CAST(:n AS numeric) AS n"), {"w": word, "n": amount}),
    ]
    for statement, params in queries:
        fast = run(env, db.fetch_all(statement, params))
        slow = run(env, sqla_all(db, statement, params))
        same_rows(fast, slow)
        one = run(env, db.fetch_one(statement, params))
        assert one == (slow[0] if slow else None)
        assert run(env, db.fetch_val(statement, params)) == (slow[0][0] if slow else None)

    # errors: same exception class (and same DBAPI class under it) on both paths
    failing: list[tuple[Any, Any]] = [
        (sa.text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": word + "x"}),
        (sa.text("SELECT CAST(:v AS integer)"), {"v": word}),
        (sa.select(FAST).where(FAST.c.id == sa.bindparam("missing")), None),
        (sa.text("SELECT * FROM no_such_table"), None),
    ]
    if rows:
        failing.append((sa.insert(FAST), {"id": rows[0]["id"]}))
    for statement, params in failing:
        fast_outcome = run(env, outcome(db.fetch_all(statement, params)))
        slow_outcome = run(env, outcome(sqla_all(db, statement, params)))
        assert fast_outcome[0] == "error"
        assert fast_outcome == slow_outcome

    # writes: equal row counts, RETURNING rows and resulting contents
    for table, path in ((FAST, "fast"), (SLOW, "slow")):
        update = sa.update(table).where(table.c.id.in_(picked)).values(amount=amount, label=word)
        returning = (
            sa.delete(table).where(table.c.mood == mood).returning(table.c.id, table.c.label)
        )
        if path == "fast":
            counted = run(env, db.execute(update))
            deleted = run(env, db.fetch_all(returning))
        else:
            counted = run(env, _sqla_rowcount(db, update))
            deleted = run(env, sqla_all(db, returning))
        if path == "fast":
            fast_count, fast_deleted = counted, deleted
    assert fast_count == counted
    same_rows(sorted(fast_deleted), sorted(deleted))
    same_rows(
        run(env, sqla_all(db, sa.select(FAST).order_by(FAST.c.id))),
        run(env, sqla_all(db, sa.select(SLOW).order_by(SLOW.c.id))),
    )


async def _sqla_rowcount(db: Database, statement: Any) -> int:
    async with db.engine.begin() as conn:
        return int((await conn.execute(statement)).rowcount)


def test_errors_chain_the_same_way_on_both_paths(
    env: tuple[asyncio.AbstractEventLoop, Database],
) -> None:
    db = env[1]

    async def caught(call: Coroutine[Any, Any, Any]) -> BaseException:
        try:
            await call
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    bad = sa.text("SELECT CAST(CAST(:v AS text) AS integer)")
    fast = run(env, caught(db.fetch_val(bad, {"v": "x"})))
    slow = run(env, caught(sqla_all(db, bad, {"v": "x"})))
    chain = [type(fast), type(fast.__cause__), type(fast.__cause__.__cause__)]
    assert chain == [type(slow), type(slow.__cause__), type(slow.__cause__.__cause__)]
    assert fast.__cause__ is getattr(fast, "orig", None)
    assert str(fast) == str(slow)
