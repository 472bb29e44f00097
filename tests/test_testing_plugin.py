"""The pytest plugin (``personal_assistant_db.testing.plugin``, loaded through the ``pytest11``
entry point) on a small user suite run by pytester in a subprocess, against real PostgreSQL:
each marked test runs inside ``db.force_rollback()``; savepoints, the statement API,
``db.connect()``, an ORM session and a Starlette app under ``httpx.ASGITransport`` all share
the test's transaction; nothing survives the suite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import asyncpg
import pytest

from personal_assistant_db.testing import plain_url

pytest_plugins = ["pytester"]

APP = """
import os
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from personal_assistant_db import Database

db = Database.from_env({"DATABASE_URL": os.environ["PA_PLUGIN_URL"], "DB_ENV": "test"})


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]


NOTES = Note.__table__
COUNT = sa.select(sa.func.count()).select_from(NOTES)


async def add(request):
    body = (await request.json())["body"]
    async with db.transaction():
        new = await db.fetch_val(sa.insert(NOTES).values(body=body).returning(NOTES.c.id))
    return JSONResponse({"id": new})


async def count(request):
    return JSONResponse({"count": await db.fetch_val(COUNT)})


app = Starlette(routes=[Route("/notes", add, methods=["POST"]), Route("/notes/count", count)])
"""

CONFTEST = """
import pytest
from app import Base, db


@pytest.fixture(scope="session")
async def pa_db_database():
    await db.start()
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db
    await db.stop()
"""

TESTS = """
import httpx
import pytest
import sqlalchemy as sa
from app import COUNT, NOTES, Note, app, db


@pytest.mark.pa_db_rollback
async def test_statement_api():
    await db.execute(sa.insert(NOTES).values(id=1, body="a"))
    assert await db.fetch_val(COUNT) == 1


@pytest.mark.pa_db_rollback
async def test_the_same_key_again_finds_a_clean_table():
    await db.execute(sa.insert(NOTES).values(id=1, body="b"))
    assert await db.fetch_val(COUNT) == 1


@pytest.mark.pa_db_rollback
async def test_nested_transactions_are_savepoints():
    async with db.transaction():
        await db.execute(sa.insert(NOTES).values(id=2, body="kept"))
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.execute(sa.insert(NOTES).values(id=3, body="undone"))
                raise RuntimeError("undo the savepoint")
    assert [r.id for r in await db.fetch_all(sa.select(NOTES.c.id))] == [2]


@pytest.mark.pa_db_rollback
async def test_connect_and_an_orm_session_share_the_transaction():
    async with db.connect() as conn:
        await conn.execute(sa.insert(NOTES).values(id=4, body="conn"))
        await conn.commit()
    async with db.session() as session:
        session.add(Note(id=5, body="orm"))
        await session.commit()
        assert await session.scalar(sa.select(sa.func.count()).select_from(Note)) == 2
    assert await db.fetch_val(COUNT) == 2


@pytest.mark.pa_db_rollback
async def test_connect_and_a_session_inside_a_transaction_block():
    async with db.transaction():
        await db.execute(sa.insert(NOTES).values(id=8, body="block"))
        async with db.connect() as conn:
            assert (await conn.execute(COUNT)).scalar() == 1  # sees the block's row
            await conn.execute(sa.insert(NOTES).values(id=9, body="conn in block"))
            await conn.commit()
        async with db.session() as session:
            session.add(Note(id=10, body="orm in block"))
            await session.commit()
        assert await db.fetch_val(COUNT) == 3
    assert await db.fetch_val(COUNT) == 3


async def test_the_fixture_form(pa_db_rollback):
    assert pa_db_rollback is db
    await db.execute(sa.insert(NOTES).values(id=6, body="fixture"))
    assert await db.fetch_val(COUNT) == 1


@pytest.fixture
async def seeded():
    await db.execute(sa.insert(NOTES).values(id=7, body="seed"))


@pytest.mark.pa_db_rollback
async def test_data_from_function_fixtures_is_rolled_back_too(seeded):
    assert await db.fetch_val(COUNT) == 1


@pytest.mark.pa_db_rollback
async def test_an_asgi_app_sees_the_test_transaction():
    await db.execute(sa.insert(NOTES).values(id=100, body="from the test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/notes/count")).json() == {"count": 1}
        assert (await client.post("/notes", json={"body": "from the app"})).status_code == 200
    assert await db.fetch_val(COUNT) == 2


async def test_zz_unmarked_tests_see_what_was_committed(pa_db_database):
    assert await pa_db_database.fetch_val(COUNT) == 0
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


@pytest.fixture
def suite(
    pytester: pytest.Pytester, make_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> str:
    url = make_database()
    monkeypatch.setenv("PA_PLUGIN_URL", url)
    pytester.makeini(INI)
    pytester.makepyfile(app=APP, conftest=CONFTEST)
    return url


async def count_notes(url: str) -> int:
    conn = await asyncpg.connect(plain_url(url))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM notes")
        return count
    finally:
        await conn.close()


async def test_each_marked_test_runs_in_a_transaction_that_is_rolled_back(
    pytester: pytest.Pytester, suite: str
) -> None:
    pytester.makepyfile(test_notes=TESTS)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=9)
    assert await count_notes(suite) == 0  # seen from outside: nothing the suite wrote is left


async def test_pytest_asyncio_strict_mode_works_too(pytester: pytest.Pytester, suite: str) -> None:
    pytester.makeini(INI.replace("asyncio_mode = auto", "asyncio_mode = strict"))
    pytester.makeconftest(
        "import pytest_asyncio\n" + CONFTEST.replace("@pytest.fixture(", "@pytest_asyncio.fixture(")
    )
    pytester.makepyfile(
        test_strict="""
        import pytest
        import sqlalchemy as sa
        from app import COUNT, NOTES, db

        pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.pa_db_rollback]

        async def test_first():
            await db.execute(sa.insert(NOTES).values(id=1, body="a"))
            assert await db.fetch_val(COUNT) == 1

        async def test_second():
            await db.execute(sa.insert(NOTES).values(id=1, body="b"))
            assert await db.fetch_val(COUNT) == 1
        """
    )
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert await count_notes(suite) == 0


async def test_without_the_override_the_error_names_the_fixture(
    pytester: pytest.Pytester, suite: str
) -> None:
    pytester.makeconftest("")
    pytester.makepyfile(
        test_bare="""
        import pytest

        @pytest.mark.pa_db_rollback
        async def test_needs_a_database():
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named pa_db_database in conftest.py*"])


def test_loading_the_plugin_imports_nothing_the_package_does_not() -> None:
    """pytest loads the plugin in every run of a project that installs the package: it adds no
    driver, pytest-asyncio aside (already a plugin of the run)."""
    code = (
        "import sys, pytest, pytest_asyncio, personal_assistant_db;"
        "before = set(sys.modules);"
        "import personal_assistant_db.testing.plugin;"
        "added = {m.split('.')[0] for m in set(sys.modules) - before};"
        "added -= {'personal_assistant_db', 'pwd'};"
        "heavy = {'asyncpg', 'psycopg', 'yoyo', 'httpx'} & set(sys.modules);"
        "assert not added and not heavy, (sorted(added), sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
