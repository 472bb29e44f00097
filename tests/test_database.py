"""The Database facade on a real server: start/stop, the engine guard, what a session carries.

The first connection (retry, fatal errors, degraded start, warm-up): tests/test_startup.py.
"""

from __future__ import annotations

import pytest

from personal_assistant_db import (
    Database,
    DatabaseNotStarted,
)


async def test_start_stop_are_idempotent_and_engine_is_guarded(test_env: dict[str, str]) -> None:
    db = Database.from_env(test_env)
    with pytest.raises(DatabaseNotStarted):
        _ = db.engine
    await db.start()
    engine = db.engine
    await db.start()
    assert db.engine is engine
    assert db.ready
    async with db.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    await db.stop()
    await db.stop()
    assert not db.started
    with pytest.raises(DatabaseNotStarted):
        db.connect()


async def test_session_carries_application_name_and_statement_timeout(
    test_env: dict[str, str],
) -> None:
    db = Database.from_env(
        test_env, application_name="pa-db-settings-test", statement_timeout_ms=1234
    )
    await db.start()
    try:
        async with db.connect() as conn:
            name = (await conn.exec_driver_sql("SHOW application_name")).scalar()
            timeout = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
        assert (name, timeout) == ("pa-db-settings-test", "1234ms")
    finally:
        await db.stop()
