"""ORM sessions on the package's engine (``db.session()``, ``db.sessionmaker()``), on real
PostgreSQL: one pool across stop/start, counted by the server; ORM statements in the pool
stats, the spans (through an exporter) and the P95 window; the pinned connection under
``force_rollback()``."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from personal_assistant_db import Database, DatabaseNotStarted, DatabaseSession, Telemetry
from personal_assistant_db.testing import plain_url


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "session_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]


async def backends(url: str) -> int:
    """Server backends connected to ``url``'s database, other than the one counting."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def create_tables(db: Database) -> None:
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def test_a_factory_built_before_start_follows_the_engine_and_keeps_one_pool(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test", "DB_POOL_SIZE": "3"})
    Session = db.sessionmaker()  # before start: no engine yet
    with pytest.raises(DatabaseNotStarted):
        async with Session() as session:
            await session.execute(sa.select(1))

    await db.start()
    await create_tables(db)
    first_engine = db.engine
    async with Session() as session:
        session.add(Note(id=1, body="one"))
        await session.commit()
        assert (await session.connection()).sync_engine is first_engine.sync_engine
    await db.stop()
    assert await backends(url) == 0

    await db.start()
    assert db.engine is not first_engine
    for i in range(2, 12):  # more sessions than the pool holds, one after another
        async with Session() as session, session.begin():
            session.add(Note(id=i, body=str(i)))
            assert (await session.connection()).sync_engine is db.engine.sync_engine
    async with db.session() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Note)) == 11
    stats = db.pool_stats()
    assert stats.used == 0  # every session gave its connection back
    assert await backends(url) == stats.idle <= 3  # the Database's own pool, nothing beside it
    await db.stop()
    assert await backends(url) == 0  # nothing the sessions used outlives stop()


async def test_orm_statements_show_in_pool_stats_spans_and_p95(
    make_database: Callable[[], str],
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = Database.from_env({"DATABASE_URL": make_database(), "DB_ENV": "test"})
    telemetry = Telemetry(db, tracer_provider=provider)
    await db.start()
    try:
        await create_tables(db)
        exporter.clear()
        checkouts = db.pool_stats().checkouts
        async with db.session() as session:
            session.add(Note(id=7, body="seven"))
            await session.commit()
            note = await session.get(Note, 7)
            assert note is not None and note.body == "seven"
            notes = (await session.scalars(sa.select(Note).where(Note.body == "seven"))).all()
            assert [n.id for n in notes] == [7]
        assert db.pool_stats().checkouts >= checkouts + 2  # one per session transaction
        names = [s.name for s in exporter.get_finished_spans()]
        assert "INSERT session_notes" in names
        assert names.count("SELECT session_notes") >= 1
        latency = telemetry.latency_snapshot()
        assert latency["INSERT"].count >= 1 and latency["SELECT"].count >= 1
        assert telemetry.overall_p95() is not None
    finally:
        await db.stop()
        provider.shutdown()


async def test_sessions_under_force_rollback_use_the_pinned_connection(
    make_database: Callable[[], str],
) -> None:
    db = Database.from_env({"DATABASE_URL": make_database(), "DB_ENV": "test"})
    await db.start()
    try:
        await create_tables(db)
        async with db.force_rollback():
            pinned = db.pinned_connection
            assert pinned is not None
            async with db.session() as session:
                session.add(Note(id=1, body="kept until the test ends"))
                await session.commit()  # releases the session's savepoint, not the outer tx
                assert (await session.connection()).sync_engine is db.engine.sync_engine
                assert session.get_bind() is pinned.sync_connection
            # the statement API runs on the same connection: it sees the session's row
            assert await db.fetch_val(sa.select(sa.func.count()).select_from(Note)) == 1
            async with db.session() as session:
                session.add(Note(id=2, body="rolled back to the savepoint"))
                await session.flush()
                await session.rollback()
            assert await db.fetch_val(sa.select(Note.id)) == 1
            async with db.transaction(), db.session() as session:
                assert await session.scalar(sa.select(Note.body)) == "kept until the test ends"
        assert await db.fetch_val(sa.select(sa.func.count()).select_from(Note)) == 0
    finally:
        await db.stop()


def test_a_bind_of_ones_own_is_refused_with_the_reason() -> None:
    db = Database.from_env({"DATABASE_URL": "postgresql://u@127.0.0.1/x", "DB_ENV": "test"})
    with pytest.raises(TypeError, match=r"db.sessionmaker\(bind=\.\.\.\)"):
        db.sessionmaker(bind=sa.create_engine("sqlite://"))
    with pytest.raises(TypeError, match="sync_session_class"):
        db.sessionmaker(sync_session_class=sa.orm.Session)

    class Audited(DatabaseSession):
        pass

    assert db.sessionmaker(sync_session_class=Audited)().sync_session_class is Audited
