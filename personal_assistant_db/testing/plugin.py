"""The pytest plugin: each test inside a transaction that is rolled back (``force_rollback``).

Registered through the ``pytest11`` entry point, so installing the package makes it available;
it does nothing until a test asks for it:

- ``@pytest.mark.pa_db_rollback`` on a test, a class or a module (``pytestmark``), or
- the ``pa_db_rollback`` fixture (it yields the ``Database``).

Point it at the app's ``Database`` by overriding one fixture, ``pa_db_database``, in your
``conftest.py``; it returns the Database, started (a session-scoped async fixture that starts
it and stops it is the usual form). Each marked test then runs inside
``db.force_rollback()``: the statement API, ``db.transaction()`` (a savepoint), ``db.connect()``,
``db.begin()`` and ``db.session()`` of any task, an ASGI app under ``httpx.ASGITransport``
included, share one connection whose transaction is rolled back when the test ends.

Async fixtures need pytest-asyncio, with the Database's loop and the tests' loop the same:
``asyncio_default_fixture_loop_scope = "session"`` and ``asyncio_default_test_loop_scope =
"session"`` in the pytest configuration (docs/testing.md).

This module imports only pytest and the standard library (the package itself is already
imported, as its parent); pytest-asyncio when it is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["pa_db_database", "pa_db_rollback"]

MARKER = "pa_db_rollback"
_HELP = "see docs/testing.md of personal-assistant-db"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: run the test inside db.force_rollback() on the Database that the "
        "pa_db_database fixture returns (personal-assistant-db)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marked tests use the ``pa_db_rollback`` fixture, set up before their other
    function-scoped fixtures (so the data those write is rolled back too)."""
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        names = getattr(item, "fixturenames", None)
        if names is not None and MARKER not in names:
            names.insert(0, MARKER)


@pytest.fixture
def pa_db_database() -> Database:
    """Override in your conftest.py: return your app's Database, started."""
    pytest.fail(
        "pa_db_rollback needs your app's Database: define a fixture named pa_db_database in "
        f"conftest.py that returns it, started ({_HELP})",
        pytrace=False,
    )


def _checked(db: Any) -> Database:
    from ..database import Database

    if not isinstance(db, Database):
        pytest.fail(
            "the pa_db_database fixture must return a personal_assistant_db.Database, got "
            f"{type(db).__name__} ({_HELP})",
            pytrace=False,
        )
    if not db.started:
        pytest.fail(
            "the pa_db_database fixture returned a Database that is not started: "
            f"await db.start() in the fixture (and db.stop() after its yield) ({_HELP})",
            pytrace=False,
        )
    return db


async def _rolled_back(pa_db_database: Database) -> AsyncIterator[Database]:
    """The Database, inside ``force_rollback()`` for the test."""
    db = _checked(pa_db_database)
    async with db.force_rollback():
        yield db


def _without_pytest_asyncio() -> None:
    pytest.fail(
        f"{MARKER} needs pytest-asyncio: pip install pytest-asyncio ({_HELP})", pytrace=False
    )


def _fixture() -> Any:
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - the plugin is inert without pytest-asyncio
        return pytest.fixture(_without_pytest_asyncio, name=MARKER)
    return pytest_asyncio.fixture(_rolled_back, name=MARKER)


pa_db_rollback = _fixture()
