"""The shipped models equal the migrated schema, and every model row round-trips.

- A database migrated to head by the package's migrate API (real yoyo), in ``public`` and in a
  ``?schema=`` schema, reflected and compared with ``models.metadata``: alembic's
  ``compare_metadata`` (types and server defaults on) plus the inspector comparisons it skips,
  and the catalog of ``metadata.create_all`` against the migrated catalog. Zero differences.
- The yardsticks are not blind: a test-only migration (a temporary migrations directory, run by
  yoyo) that adds a column fails both, and so does each kind of change made to a copy of the
  metadata (type, NOT NULL, default, ON DELETE, CHECK, UNIQUE, index, identity).
- Every table's row, all columns set, goes in and comes back equal through the statement API,
  ``db.connect()`` and an ``AsyncSession``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models_helpers import PATHS, alembic_diffs, catalog_diffs, round_trip_every_table, sync_engine
from sqlalchemy import Column, MetaData, String, Table, select, text
from sqlalchemy import insert as insert_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.sql.schema import CheckConstraint, Index, UniqueConstraint
from yoyo import get_backend, read_migrations

from personal_assistant_db import Database, models
from personal_assistant_db.migrate import apply
from personal_assistant_db.migrate.target import target_of
from personal_assistant_db.testing import fresh_database, started_database


def migrated(server_url: str, schema: str) -> Iterator[str]:
    with fresh_database(server_url, prefix="pa_models") as url:
        if schema:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url += f"?schema={schema}"
        apply(url)
        yield url


@pytest.fixture(scope="module", params=["", "auth"], ids=["public", "schema=auth"])
def head_url(request: pytest.FixtureRequest, server_url: str) -> Iterator[str]:
    yield from migrated(server_url, request.param)


@pytest.fixture(scope="module")
def public_head(server_url: str) -> Iterator[str]:
    yield from migrated(server_url, "")


def differences(url: str, metadata: MetaData = models.metadata) -> tuple[list[Any], list[str]]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            found = alembic_diffs(conn, metadata), catalog_diffs(conn, schema, metadata)
            conn.rollback()
            return found
    finally:
        engine.dispose()


def test_models_equal_the_migrated_schema(head_url: str) -> None:
    by_alembic, by_catalog = differences(head_url)
    assert by_alembic == []
    assert by_catalog == []


def test_one_table_per_migrated_table(public_head: str) -> None:
    with target_of(public_head).connect() as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT LIKE '%yoyo%' AND tablename NOT LIKE '\\_pa\\_db%'"
        ).fetchall()
    assert {r[0] for r in rows} == set(models.metadata.tables)
    assert {m.persist_selectable.description for m in models.Base.registry.mappers} == set(
        models.metadata.tables
    )


def test_a_migration_adding_a_column_fails_the_comparison(server_url: str, tmp_path: Path) -> None:
    (tmp_path / "0100_test_only_nickname.sql").write_text(
        "-- depends: \nALTER TABLE users ADD COLUMN nickname text;\n"
    )
    (tmp_path / "0100_test_only_nickname.rollback.sql").write_text(
        "ALTER TABLE users DROP COLUMN nickname;\n"
    )
    for url in migrated(server_url, ""):
        backend = get_backend(target_of(url).yoyo_uri())
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(tmp_path))))
        backend.connection.close()
        by_alembic, by_catalog = differences(url)
    assert [(d[0], d[2], d[3].name) for d in by_alembic] == [("remove_column", "users", "nickname")]
    # the position follows every column users has (0008 added seven)
    assert by_catalog == [f"+ columns users.nickname: text #{len(models.users.c) + 1}"]


def _copy() -> MetaData:
    copy = MetaData(naming_convention=models.metadata.naming_convention)
    for table in models.metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def _retype(md: MetaData) -> None:
    md.tables["users"].c.display_name.type = String(80)


def _nullable(md: MetaData) -> None:
    md.tables["users"].c.display_name.nullable = False


def _default(md: MetaData) -> None:
    md.tables["users"].c.is_active.server_default.arg = text("false")  # type: ignore[union-attr]


def _ondelete(md: MetaData) -> None:
    fk = next(iter(md.tables["user_sessions"].foreign_key_constraints))
    fk.ondelete = "RESTRICT"
    for element in fk.elements:
        element.ondelete = "RESTRICT"


def _check(md: MetaData) -> None:
    table = md.tables["users"]
    check = next(c for c in table.constraints if c.name == "users_failed_login_count_nonnegative")
    table.constraints.discard(check)
    table.append_constraint(
        CheckConstraint("failed_login_count >= 1", name="users_failed_login_count_nonnegative")
    )


def _unique(md: MetaData) -> None:
    table = md.tables["roles"]
    table.constraints.discard(next(c for c in table.constraints if c.name == "roles_name_key"))


def _extra_unique(md: MetaData) -> None:
    md.tables["users"].append_constraint(UniqueConstraint("display_name", name="users_dn_key"))


def _index(md: MetaData) -> None:
    table = md.tables["security_events"]
    table.indexes.discard(next(i for i in table.indexes if str(i.name).endswith("occurred_at_idx")))


def _partial(md: MetaData) -> None:
    table = md.tables["user_roles"]
    table.indexes.discard(
        next(i for i in table.indexes if str(i.name).endswith("one_primary_per_user"))
    )
    Index("user_roles_one_primary_per_user", table.c.user_id, unique=True)


def _identity(md: MetaData) -> None:
    md.tables["roles"].c.id.identity.always = False  # type: ignore[union-attr]


def _extra_table(md: MetaData) -> None:
    Table("todos", md, Column("id", String, primary_key=True))


MUTATIONS: dict[str, Callable[[MetaData], None]] = {
    "type": _retype,
    "not null": _nullable,
    "server default": _default,
    "on delete": _ondelete,
    "check": _check,
    "unique dropped": _unique,
    "unique added": _extra_unique,
    "index dropped": _index,
    "partial index": _partial,
    "identity": _identity,
    "table": _extra_table,
}


@pytest.mark.parametrize("kind", list(MUTATIONS))
def test_the_comparison_sees_each_kind_of_difference(public_head: str, kind: str) -> None:
    md = _copy()
    MUTATIONS[kind](md)
    by_alembic, by_catalog = differences(public_head, md)
    assert by_alembic, f"alembic's comparison missed a changed {kind}"
    assert by_catalog, f"the catalog comparison missed a changed {kind}"


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_every_table_row_round_trips(public_head: str, path: str) -> None:
    async with started_database(public_head) as db:
        await round_trip_every_table(PATHS[path](db), path)


_LOCAL = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=40)
_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_TIME = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(
    local=_LOCAL,
    display_name=st.none() | _TEXT,
    failed=st.integers(0, 2**63 - 1),
    locked_until=st.none() | _TIME,
    flags=st.tuples(st.booleans(), st.booleans()),
)
@settings(max_examples=30)
async def test_any_user_round_trips_through_core_and_orm(
    public_head: str,
    local: str,
    display_name: str | None,
    failed: int,
    locked_until: datetime | None,
    flags: tuple[bool, bool],
) -> None:
    values = {
        "email": f"{local}.{uuid.uuid4().hex}@example.com",
        "display_name": display_name,
        "password_hash": "$2b$12$abcdefghijklmnopqrstuv",
        "is_active": flags[0],
        "is_verified": flags[1],
        "failed_login_count": failed,
        "locked_until": locked_until,
    }
    async with started_database(public_head, DB_POOL_SIZE="2") as db:
        user_id = await db.fetch_val(
            insert_(models.users).values(values).returning(models.users.c.id)
        )
        async with async_sessionmaker(db.engine)() as session:
            user = await session.get(models.User, user_id)
            assert user is not None
            assert {k: getattr(user, k) for k in values} == values
            user.display_name = "renamed"
            await session.commit()
        row = await db.fetch_one(select(models.users).where(models.users.c.id == user_id))
        assert row is not None and row.display_name == "renamed"
        assert row.updated_at > row.created_at  # the migration's trigger ran on the ORM's UPDATE


def _doc_example(name: str) -> Callable[[Database], Awaitable[Any]]:
    """The ``python`` block of docs/models.md that defines ``name``, executed as written."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "models.md").read_text()
    blocks = [b.split("```", 1)[0] for b in page.split("```python\n")[1:]]
    (code,) = [b for b in blocks if f"async def {name}(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, f"docs/models.md:{name}", "exec"), namespace)  # noqa: S102 - our own docs
    function: Callable[[Database], Awaitable[Any]] = namespace[name]
    return function


@pytest.mark.parametrize("schema", ["", "auth"])
async def test_the_docs_core_and_orm_examples_run(server_url: str, schema: str) -> None:
    for url in migrated(server_url, schema):
        async with started_database(url) as db:
            assert await _doc_example("core_example")(db) == ["s-1"]
            granted = await _doc_example("orm_example")(db)
        assert "assistant:advanced" in granted and "users:manage" not in granted
