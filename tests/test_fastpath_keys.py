"""Statements built per call (``select()``, ``sa.lambda_stmt``, ``text()``, a plain string)
find their compiled entry by structure, never by value: on real PostgreSQL, for generated
values and shapes, the fast path returns what plain SQLAlchemy returns for the same statement.

The cache persists across Hypothesis examples, so each example runs statements whose
structure an earlier example compiled with other values (and other IN-list lengths).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personal_assistant_db import Database
from personal_assistant_db.fastpath.keys import text_key
from personal_assistant_db.testing import fresh_database

MD = sa.MetaData()
T = sa.Table(
    "keys_items",
    MD,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text),
    sa.Column("amount", sa.Numeric(10, 2)),
)
NAMES = ["ann", "bob", "cy", "dee"]
ROWS = [{"id": i, "name": NAMES[i % 4], "amount": Decimal(i * 7 % 23)} for i in range(40)]
ROWS_AS_TUPLES = [(r["id"], r["name"], r["amount"]) for r in ROWS]
Env = tuple[asyncio.AbstractEventLoop, Database]


@pytest.fixture(scope="module")
def env(server_url: str) -> Iterator[Env]:
    loop = asyncio.new_event_loop()
    with fresh_database(server_url, prefix="pa_keys") as url:
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
        await conn.execute(sa.insert(T), ROWS)


def run(env: Env, coro: Coroutine[Any, Any, Any]) -> Any:
    return env[0].run_until_complete(coro)


async def sqla_all(db: Database, statement: Any, params: Any = None) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(statement, params)).all())


def per_call_select(op: str, ids: list[int], low: int, name: str) -> Any:
    where = {
        "gt": T.c.amount > low,
        "le": T.c.amount <= low,
        "name": T.c.name == name,
    }[op]
    return sa.select(T.c.id, T.c.name, T.c.amount).where(T.c.id.in_(ids), where).order_by(T.c.id)


def per_call_lambda(op: str, ids: list[int], low: int, name: str) -> Any:
    # one lambda per shape: SQLAlchemy keys a lambda on its code and its closure's structure
    if op == "gt":
        return sa.lambda_stmt(
            lambda: (
                sa.select(T.c.id, T.c.name, T.c.amount)
                .where(T.c.id.in_(ids), T.c.amount > low)
                .order_by(T.c.id)
            )
        )
    if op == "le":
        return sa.lambda_stmt(
            lambda: (
                sa.select(T.c.id, T.c.name, T.c.amount)
                .where(T.c.id.in_(ids), T.c.amount <= low)
                .order_by(T.c.id)
            )
        )
    stmt = sa.lambda_stmt(lambda: sa.select(T.c.id, T.c.name, T.c.amount))
    stmt += lambda s: s.where(T.c.id.in_(ids), T.c.name == name).order_by(T.c.id)
    return stmt


TEXT_SQL = (
    "SELECT id, name, amount FROM keys_items WHERE id = ANY(:ids) AND amount > :low ORDER BY id"
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    op=st.sampled_from(["gt", "le", "name"]),
    ids=st.lists(st.integers(-2, 45), max_size=6),
    low=st.integers(-1, 24),
    other=st.integers(-1, 24),
    name=st.sampled_from([*NAMES, "zed"]),
)
def test_statements_built_per_call_return_what_sqlalchemy_returns(
    env: Env, op: str, ids: list[int], low: int, other: int, name: str
) -> None:
    db = env[1]
    builders: list[Callable[[str, list[int], int, str], Any]] = [
        per_call_select,
        per_call_lambda,
    ]
    for build in builders:
        fast = run(env, db.fetch_all(build(op, ids, low, name)))
        assert fast == run(env, sqla_all(db, build(op, ids, low, name)))
        assert run(env, db.fetch_val(build(op, ids, low, name))) == (fast[0][0] if fast else None)

    params = {"ids": ids, "low": low}
    expected = run(env, sqla_all(db, sa.text(TEXT_SQL), params))
    assert expected == [r for r in ROWS_AS_TUPLES if r[0] in ids and r[2] > low]
    assert run(env, db.fetch_all(sa.text(TEXT_SQL), params)) == expected
    assert run(env, db.fetch_all(TEXT_SQL, params)) == expected  # a plain string
    # the same string with a value bound in the statement: not the plain entry's values
    bound = sa.text(TEXT_SQL).bindparams(low=other)
    assert run(env, db.fetch_all(bound, {"ids": ids})) == run(
        env, sqla_all(db, sa.text(TEXT_SQL).bindparams(low=other), {"ids": ids})
    )
    # a typed bind parameter changes the compiled SQL (a cast): never the plain entry
    typed = sa.text("SELECT :v AS v").bindparams(sa.bindparam("v", type_=sa.Integer))
    assert run(env, db.fetch_val(typed, {"v": other})) == other
    assert run(env, db.fetch_val(sa.text("SELECT :v AS v"), {"v": str(other)})) == str(other)


def test_a_missing_parameter_of_a_plain_text_names_it(env: Env) -> None:
    db = env[1]
    run(env, db.fetch_all(sa.text(TEXT_SQL), {"ids": [1], "low": 0}))  # cached first
    with pytest.raises(sa.exc.StatementError, match="low"):
        run(env, db.fetch_all(sa.text(TEXT_SQL), {"ids": [1]}))


def test_statements_built_per_call_are_not_kept_alive(env: Env) -> None:
    """The identity cache holds weak references: a dropped statement is freed at once."""
    db = env[1]
    run(env, db.fetch_val(sa.select(T.c.name).where(T.c.id == 0)))  # compiled (and kept) once
    refs = []
    for i in range(40):
        statement = sa.select(T.c.name).where(T.c.id == i)
        assert run(env, db.fetch_val(statement)) == NAMES[i % 4]
        refs.append(weakref.ref(statement))
    del statement
    gc.collect()
    assert [r for r in refs if r() is not None] == []


def test_text_key_is_the_string_only_for_plain_text() -> None:
    assert text_key(sa.text("SELECT :a, :b")) == text_key(sa.text("SELECT :a, :b")) is not None
    assert text_key(sa.text("SELECT :a")) != text_key(sa.text("SELECT :b"))
    assert text_key(sa.text("SELECT :a").bindparams(a=1)) is None
    assert text_key(sa.text("SELECT :a").bindparams(sa.bindparam("a", type_=sa.Integer))) is None
    assert text_key(sa.text("SELECT :a").bindparams(sa.bindparam("a", expanding=True))) is None
    assert text_key(sa.text("SELECT 1").execution_options(stream_results=True)) is None
    assert text_key(sa.text("SELECT 1").columns(sa.column("x"))) is None
    assert text_key(sa.select(T.c.id)) is None
