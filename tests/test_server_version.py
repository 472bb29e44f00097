"""The startup warning for a server older than 14. No server older than 14 can be had here (the
version matrix's sources start at 14), so the rule is checked on the version tuples SQLAlchemy's
dialect reports; the last test starts a real Database on this run's server and sees no warning."""

from __future__ import annotations

import pytest
import structlog

from personal_assistant_db.server_version import unsupported_version, version_warning
from personal_assistant_db.testing import started_database


@pytest.mark.parametrize(
    ("info", "named"),
    [((13, 12), "13.12"), ((12, 0), "12.0"), ((9, 6, 24), "9.6")],
)
def test_older_than_14_names_the_version_and_what_may_not_work(
    info: tuple[int, ...], named: str
) -> None:
    warning = unsupported_version(info)
    assert warning is not None
    assert warning.startswith(f"PostgreSQL {named} is older than 14")
    for part in ("migrations", "doctor", "replica lag", "upgrade to PostgreSQL 14"):
        assert part in warning


@pytest.mark.parametrize("info", [(14, 1), (15, 20), (16, 2), (17, 0), (18, 6), None, ()])
def test_14_and_newer_or_unknown_give_no_warning(info: tuple[int, ...] | None) -> None:
    assert unsupported_version(info) is None


def test_the_doctor_and_startup_share_one_text() -> None:
    assert unsupported_version((13, 4)) == version_warning(130004, "13.4")


async def test_a_supported_server_starts_without_the_warning(database_url: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with started_database(database_url):
            pass
    assert [e for e in logs if e["event"] == "db.server.unsupported"] == []
    assert any(e["event"] == "db.engine.start" for e in logs)
