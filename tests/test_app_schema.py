"""``?schema=`` in DATABASE_URL runs the app on the schema the migrations used (app_schema.py).

The README's own URL form (``postgresql://...?schema=auth``): ``pa-db migrate apply`` migrates
``auth``; ``Database.from_env`` with the same URL starts, and the models, the statement API (Core
and text SQL), ``db.connect()``, an ``AsyncSession`` and ``/health/ready`` with the migrations
check all resolve to ``auth``. ``public`` is a decoy: migrated only to 0003, with its own rows,
so anything that read ``public`` instead would fail or count the wrong rows. Behind PgBouncer in
transaction mode, where no startup parameter or session SET reaches the server, the models still
resolve (schema_translate_map renders the schema into the SQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from models_helpers import PATHS, round_trip_every_table
from sqlalchemy import func, select, text

from personal_assistant_db import (
    ConfigurationError,
    ConnectFatal,
    Database,
    MigrationError,
    PoolerMismatch,
    Settings,
    models,
)
from personal_assistant_db.app_schema import search_path
from personal_assistant_db.engines import connect_args
from personal_assistant_db.migrate import apply
from personal_assistant_db.migrate.source import shipped_ids
from personal_assistant_db.migrate.target import target_of
from personal_assistant_db.pooler import begin_suffix
from personal_assistant_db.testing import PgBouncer, PgBouncerUnavailable, started_database

MakeDb = Callable[[], str]
DECOY = "INSERT INTO users (email, password_hash) VALUES ('decoy@public.example', '$x$decoy')"


@pytest.fixture(scope="module")
def readme_url(server_url: str) -> Iterator[str]:
    """A database whose ``auth`` is at head and whose ``public`` is a decoy at 0003."""
    from personal_assistant_db.testing import fresh_database

    with fresh_database(server_url, prefix="pa_schema") as url:
        apply(url, to=shipped_ids()[2])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DECOY)
            conn.execute("CREATE SCHEMA auth")
        readme = f"{url}?schema=auth"  # the README: add ?schema=auth to DATABASE_URL
        apply(readme)
        yield readme


def public_users(url: str) -> int:
    with psycopg.connect(url.split("?")[0]) as conn:
        row = conn.execute("SELECT count(*) FROM public.users").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("path", sorted(PATHS))
async def test_models_resolve_to_the_schema(readme_url: str, path: str) -> None:
    async with started_database(readme_url) as db:
        await round_trip_every_table(PATHS[path](db), f"schema-{path}")
        assert "schema_translate_map" not in db.fast_path.fallbacks
    assert public_users(readme_url) == 1  # only the decoy: nothing went to public


async def test_text_sql_and_core_see_the_same_schema(readme_url: str) -> None:
    async with started_database(readme_url) as db:
        assert await db.fetch_val("SELECT current_schema()") == "auth"
        core = await db.fetch_val(select(func.count()).select_from(models.users))
        raw = await db.fetch_val(text("SELECT count(*) FROM users"))
        assert core == raw
        assert await db.fetch_val("SELECT count(*) FROM users WHERE email LIKE 'decoy@%'") == 0
        async with db.connect() as conn:
            roles = (await conn.execute(select(models.roles.c.name))).scalars().all()
        assert {"user", "premium", "administrator"} <= set(roles)  # 0006's seed, in auth


async def test_readiness_reads_the_schemas_migrations(readme_url: str) -> None:
    async with started_database(readme_url) as db:
        app = db.health_app(require_migrations=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
    # the same database without ?schema= is at 0003: its readiness fails on the pending ones
    async with started_database(readme_url.split("?")[0]) as db:
        transport = httpx.ASGITransport(app=db.health_app(require_migrations=True))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/ready")).status_code == 503


async def test_a_schema_that_does_not_exist_fails_the_start_clearly(readme_url: str) -> None:
    db = Database.from_env({"DATABASE_URL": readme_url.replace("=auth", "=billing")})
    with pytest.raises(ConnectFatal, match=r"schema 'billing' \(from \?schema= in DATABASE_URL\)"):
        await db.start()
    assert not db.started


@pytest.mark.parametrize("value", ["Auth", "two%20words", "a-b", ""])
def test_a_schema_that_is_not_a_plain_name_is_a_setting_problem(value: str) -> None:
    url = f"postgresql://u:Sekrit-77@db/app?schema={value}"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"DATABASE_URL": url})
    problems = [p for p in caught.value.problems if p.variable == "DATABASE_URL"]
    assert problems and "?schema=" in problems[0].problem
    assert "Sekrit-77" not in str(caught.value)


def test_the_schema_reaches_each_pooler_mode_its_own_way() -> None:
    def args(pooler: str) -> dict[str, object]:
        url = "postgresql://u@db/app?schema=auth"
        return connect_args(Settings.from_env({"DATABASE_URL": url, "DB_POOLER": pooler}))

    assert (
        Settings.from_env({"DATABASE_URL": "postgresql://u@db/app?schema=auth"}).async_url.query
        == {}
    )
    assert args("none")["server_settings"]["search_path"] == '"auth", public'  # type: ignore[index]
    for pooler in ("pgbouncer-session", "pgbouncer-transaction"):  # PgBouncer refuses it at startup
        assert "search_path" not in args(pooler)["server_settings"]  # type: ignore[operator]
    assert begin_suffix(0, search_path("auth")) == ' SET LOCAL search_path = "auth", public;'


@pytest.mark.parametrize("mode", ["session", "transaction"])
async def test_behind_pgbouncer_the_models_still_resolve(
    readme_url: str, server_url: str, mode: str
) -> None:
    try:
        bouncer = PgBouncer(server_url, pool_mode=mode, pool_size=2)
    except PgBouncerUnavailable as exc:
        pytest.skip(f"no PgBouncer here: {exc}")
    bouncer.start()
    try:
        pooled = bouncer.url_for(readme_url.split("?")[0]) + "?schema=auth"
        async with started_database(pooled, DB_POOLER=f"pgbouncer-{mode}") as db:
            await round_trip_every_table(PATHS["statement API"](db), f"bouncer-{mode}")
            await round_trip_every_table(PATHS["AsyncSession"](db), f"bouncer-orm-{mode}")
            async with db.transaction() as tx:  # search_path rides on BEGIN (SET LOCAL)
                assert await tx.fetch_val("SELECT current_schema()") == "auth"
    finally:
        bouncer.cleanup()
    assert public_users(readme_url) == 1


class _DroppingBouncer(PgBouncer):
    """PgBouncer told to accept and silently drop the startup parameters it does not track."""

    def render_ini(self) -> str:
        return super().render_ini() + "ignore_startup_parameters = search_path, statement_timeout\n"


async def test_a_pooler_that_drops_the_search_path_is_named_at_start(
    readme_url: str, server_url: str
) -> None:
    try:
        bouncer = _DroppingBouncer(server_url, pool_mode="session", pool_size=2)
    except PgBouncerUnavailable as exc:
        pytest.skip(f"no PgBouncer here: {exc}")
    bouncer.start()
    try:
        pooled = bouncer.url_for(readme_url.split("?")[0]) + "?schema=auth"
        db = Database.from_env({"DATABASE_URL": pooled, "DB_ENV": "test", "DB_POOLER": "none"})
        with pytest.raises(PoolerMismatch) as caught:
            await db.start()
        assert not db.started
        assert caught.value.problems[0].variable == "DB_POOLER"
        assert "search_path for ?schema=auth did not reach the server" in str(caught.value)
        async with started_database(pooled, DB_POOLER="pgbouncer-session") as db:
            assert await db.fetch_val("SELECT current_schema()") == "auth"
    finally:
        bouncer.cleanup()


@given(st.text(st.characters(codec="ascii", exclude_characters="&#%=+ \x00"), max_size=70))
def test_settings_take_exactly_the_names_pa_db_migrate_takes(value: str) -> None:
    """Settings (the app) and target_of (pa-db migrate) agree on every ``?schema=`` value."""
    url = f"postgresql://u:Sekrit-77@db/app?schema={quote(value, safe='')}"
    try:
        target_of(url)
        migrate_ok = True
    except MigrationError:
        migrate_ok = False
    if migrate_ok:
        assert Settings.from_env({"DATABASE_URL": url}).schema == value
    else:
        with pytest.raises(ConfigurationError) as caught:
            Settings.from_env({"DATABASE_URL": url})
        assert "Sekrit-77" not in str(caught.value)
