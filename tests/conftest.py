"""Shared fixtures: real PostgreSQL only.

- ``server_url``: ``DATABASE_URL`` when set (CI sets the system server, 127.0.0.1:5432), else an
  embedded pgserver started for this run.
- ``database_url``: a fresh database for this whole run, dropped at the end.
- ``make_database()``: a fresh empty database per call, dropped after the test.
- ``db``: a started ``Database`` (DB_ENV=test) on ``database_url``.
- ``throwaway_server``: a private server on 127.0.0.1 that a test may stop and restart, on
  ``postgres_bindir``'s binaries.
- ``postgres_bindir``: None (Debian's binaries when installed, else pgserver's), or pgserver's
  when ``PA_DB_TEST_POSTGRES=embedded``: .ci/run's second pass, which proves the suite on a machine
  without a system PostgreSQL.
- ``stat_statements_server``: a started throwaway server with pg_stat_statements preloaded; the
  test is skipped, with the reason, where the binaries do not ship it (pgserver's).

Every async fixture and test runs on the one session event loop (pyproject: asyncio_default_*
_loop_scope = "session"), so an engine never meets a second loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from personal_assistant_db import Database
from personal_assistant_db.testing import (
    ThrowawayServer,
    embedded_bindir,
    embedded_server_url,
    fresh_database,
)

# Two cores shared with other jobs: generation speed and per-example time vary with load, and a
# timing health check failing would say nothing about the code under test.
settings.register_profile("shared-cpu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-cpu")


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    data_dir = os.path.join(tempfile.gettempdir(), "pa-db-test-pgserver")
    return embedded_server_url(data_dir)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url, prefix="pa_run") as url:
        yield url


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    with ExitStack() as stack:
        yield lambda: stack.enter_context(fresh_database(server_url))


@pytest.fixture
def test_env(database_url: str) -> dict[str, str]:
    """An environment for Settings.from_env on the run's database."""
    return {"DATABASE_URL": database_url, "DB_ENV": "test"}


@pytest.fixture
async def db(test_env: dict[str, str]) -> AsyncIterator[Database]:
    database = Database.from_env(test_env)
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture(scope="session")
def postgres_bindir() -> Path | None:
    if os.environ.get("PA_DB_TEST_POSTGRES") == "embedded":
        return embedded_bindir()
    return None


@pytest.fixture
def throwaway_server(postgres_bindir: Path | None) -> Iterator[ThrowawayServer]:
    server = ThrowawayServer(bindir=postgres_bindir)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def stat_statements_server(throwaway_server: ThrowawayServer) -> ThrowawayServer:
    if not throwaway_server.has_pg_stat_statements:
        pytest.skip(
            f"pg_stat_statements is not shipped with the PostgreSQL in {throwaway_server.bindir} "
            "(pgserver's build has no contrib modules); install Debian's postgresql (or "
            "postgresql-contrib) to run this test"
        )
    return throwaway_server
