"""Adoption against the migration timeouts: a clear refusal that names the variable to raise.

At 1,000,000 users and 2,000,000 security events (bench/adopt.py) on the shared 2-core machine,
``pa-db migrate adopt`` with the package's default ``DB_MIGRATE_STATEMENT_TIMEOUT_MS`` (60 s)
stopped in its check scan of ``security_events`` with "canceling statement due to statement
timeout (SQLSTATE 57014); nothing was changed": right to change nothing, but the operator is not
told which setting to raise (the migration runner's own message names the timeout and its value).
Here the same happens on purpose on a small database with a 5 ms timeout.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from adopt_helpers import catalog_objects, cli
from legacy_client import LegacyClient, create_legacy, fill_legacy

from personal_assistant_db.migrate import table_checksums

MakeDb = Callable[[], str]


def test_a_statement_timeout_during_adopt_names_the_variable_and_changes_nothing(
    make_database: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_database()
    create_legacy(url)
    fill_legacy(url, users=5_000, events=50_000)
    before, catalog = table_checksums(url), catalog_objects(url)

    monkeypatch.setenv("DB_MIGRATE_STATEMENT_TIMEOUT_MS", "5")
    for args in (["adopt", "--check"], ["adopt"]):
        code, out, err = cli(*args, url=url)
        assert code == 2, out + err
        assert "nothing was changed" in out + err
        assert "DB_MIGRATE_STATEMENT_TIMEOUT_MS" in out + err, (
            f"`pa-db migrate {' '.join(args)}` hit statement_timeout and did not say which"
            f" setting to raise: {(out + err).strip()!r}"
        )
        assert table_checksums(url) == before and catalog_objects(url) == catalog
    with LegacyClient(url) as app:  # the app never noticed
        assert app.session("after-timeout") > 5_000

    monkeypatch.setenv("DB_MIGRATE_STATEMENT_TIMEOUT_MS", "0")  # 0 = none
    code, out, err = cli("adopt", "--check", url=url)
    assert code in (0, 1), out + err
