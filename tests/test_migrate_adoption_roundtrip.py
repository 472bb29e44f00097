"""Adoption round trip on generated legacy data: check, expand, every value, rollback, again.

For each dataset that Hypothesis draws (tests/legacy_data.py: unicode and case-colliding emails,
NULLs everywhere, odd IPs, naive timestamps at DST changes, large JSON, tokens of every type):

1. ``adopt --check`` changes nothing, names the case-colliding accounts by primary key, and
   never prints a value (no email, token, hash, secret or phone number);
2. expand: every column of the package's tables (the ``pa_adopt`` views) equals the documented
   mapping of the legacy row, computed in Python (tests/adopt_helpers.py), and the legacy
   columns are untouched (checksums);
3. ``pa-db migrate rollback --steps 1`` gives back the legacy layout exactly: per-table
   checksums identical, the catalog identical (no view, trigger, function or column left);
4. adopt again succeeds, with the same values.

The CLI runs in-process (tests/adopt_helpers.cli). Each example needs a fresh database: a few
seconds each here, so the example count is modest (``ADOPT_EXAMPLES`` raises it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from adopt_helpers import catalog_objects, cli, mapping_differences, rows_of
from hypothesis import HealthCheck, Phase, given, settings
from legacy_client import create_legacy
from legacy_data import Rows, insert, legacy_datasets

from personal_assistant_db.migrate import adopt, table_checksums

MakeDb = Callable[[], str]
EXAMPLES = int(os.environ.get("ADOPT_EXAMPLES", "8"))


def _secrets(data: Rows) -> list[str]:
    """Values that must never appear in a report: secrets, hashes, emails, phones."""
    found = []
    for table, column in [
        ("users", "email"),
        ("users", "hashed_password"),
        ("users", "verification_token"),
        ("users", "password_reset_token"),
        ("users", "phone_number"),
        ("auth_tokens", "token"),
        ("user_sessions", "session_id"),
        ("mfa_configurations", "totp_secret"),
    ]:
        found += [r[column] for r in data[table] if r[column] and len(r[column]) >= 6]
    for row in data["mfa_configurations"]:
        found += [c for c in row["backup_codes"] or [] if len(c) >= 6]
    return found


def _case_collisions(url: str) -> set[str]:
    """Accounts whose emails collide under the package's unique index, ``lower(email)``.

    PostgreSQL's lower(), not Python's: they differ (Python lowers 'İ' to 'i' + U+0307, the
    server's collation to 'i'), and the index is what refuses the row."""
    rows = rows_of(
        url,
        "SELECT id FROM users WHERE lower(email) IN"
        " (SELECT lower(email) FROM users GROUP BY 1 HAVING count(*) > 1)",
    )
    return {f"id={r['id']}" for r in rows}


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.generate],  # shrinking re-runs whole adoptions: minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(data=legacy_datasets())
def test_check_expand_values_rollback_readopt(make_database: MakeDb, data: Rows) -> None:
    url = make_database()
    create_legacy(url)
    insert(url, data)
    before = table_checksums(url)
    catalog = catalog_objects(url)

    # 1. check: nothing applied, decisions listed by key, no value printed
    code, stdout, stderr = cli("adopt", "--check", "--json", url=url)
    assert code in (0, 1), stdout + stderr
    out = stdout + stderr
    for secret in _secrets(data):
        assert secret not in out, (
            f"a value of the legacy data reached the --check output: {secret!r}"
        )
    report = json.loads(stdout)
    assert table_checksums(url) == before and catalog_objects(url) == catalog
    collisions = _case_collisions(url)
    listed = {
        key
        for f in report["findings"]
        if f["table"] == "users" and f["decision"]  # two accounts: a decision, not a merge
        for key in f["keys"]
    }
    assert collisions <= listed, f"case-colliding accounts {collisions} not all listed: {report}"
    assert (code == 1) == any(f["decision"] for f in report["findings"])
    if collisions:
        assert code == 1

    # 2. expand: every value as the mapping says, legacy columns untouched
    expanded = adopt(url)
    assert expanded.exit_code == 0, expanded.as_dict()
    assert table_checksums(url) == before
    assert mapping_differences(url, data) == []

    # 3. rollback: the legacy layout, every row and value, exactly
    code, stdout, stderr = cli("rollback", "--steps", "1", url=url)
    assert code == 0, stdout + stderr
    assert table_checksums(url) == before
    assert catalog_objects(url) == catalog

    # 4. again
    again = adopt(url)
    assert again.exit_code == 0, again.as_dict()
    assert mapping_differences(url, data) == []
