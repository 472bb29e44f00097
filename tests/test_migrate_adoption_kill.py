"""An adoption killed with ``kill -9`` in the middle of its backfill (issue 19, bad input).

``pa-db migrate adopt`` runs as a real subprocess on a database of 20,000 users and 40,000
security events, in batches of 500, while the legacy app (two threads) keeps running whole
visits. Once the backfill has done some rows and not all, the process gets SIGKILL. Then, as
docs/adopting.md says: ``pa-db migrate unlock`` and ``pa-db migrate adopt`` again, which
finishes the job. Throughout: the legacy app has zero errors; after the rerun every legacy row's
package columns equal the mapping (checked in SQL over all rows), and the rows written before
the adoption are unchanged (checksums of their legacy columns). Rolling back afterwards gives back
the legacy layout with equal per-table checksums.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg
import pytest
from adopt_helpers import catalog_objects, pa_db
from legacy_client import LEGACY_TABLES, LegacyLoad, create_legacy, fill_legacy

from personal_assistant_db.migrate import table_checksums

MakeDb = Callable[[], str]
USERS, EVENTS = 20_000, 40_000

# Every mapped column of the seeded rows, legacy against package, over all rows (0 = equal).
MISMATCHES = {
    "users": """
        SELECT count(*) FROM users u FULL JOIN pa_adopt.users v USING (id)
        WHERE u.id IS NULL OR v.id IS NULL
           OR v.email IS DISTINCT FROM u.email OR v.display_name IS DISTINCT FROM u.full_name
           OR v.password_hash IS DISTINCT FROM u.hashed_password
           OR v.phone_number IS DISTINCT FROM u.phone_number
           OR v.is_verified IS DISTINCT FROM coalesce(u.is_verified, false)
           OR v.failed_login_count IS DISTINCT FROM coalesce(u.failed_login_attempts, 0)
           OR v.last_login_at IS DISTINCT FROM (u.last_login AT TIME ZONE 'UTC')
           OR v.created_at IS DISTINCT FROM coalesce(u.created_at AT TIME ZONE 'UTC', v.created_at)
    """,
    "auth_tokens": """
        SELECT count(*) FROM auth_tokens t FULL JOIN pa_adopt.auth_tokens v USING (id)
        WHERE t.id IS NULL OR v.id IS NULL
           OR v.token_hash IS DISTINCT FROM encode(sha256(convert_to(t.token, 'UTF8')), 'hex')
              AND t.token NOT LIKE 'sha256:%'
           OR v.revoked IS DISTINCT FROM coalesce(t.is_revoked, false)
           OR v.expires_at IS DISTINCT FROM (t.expires_at AT TIME ZONE 'UTC')
    """,
    "security_events": """
        SELECT count(*) FROM security_events e FULL JOIN pa_adopt.security_events v USING (id)
        WHERE e.id IS NULL OR v.id IS NULL
           OR v.details IS DISTINCT FROM coalesce(e.event_data::jsonb, '{}'::jsonb)
           OR v.severity IS DISTINCT FROM CASE e.severity WHEN 'warning' THEN 'medium'
                                                          ELSE coalesce(e.severity, 'info') END
           OR v.occurred_at IS DISTINCT FROM (e.created_at AT TIME ZONE 'UTC')
    """,
    "mfa_configurations": """
        SELECT count(*) FROM mfa_configurations m FULL JOIN pa_adopt.mfa_configurations v
          USING (id)
        WHERE m.id IS NULL OR v.id IS NULL OR v.totp_secret IS DISTINCT FROM m.totp_secret
           OR cardinality(v.backup_codes) <> json_array_length(m.backup_codes)
    """,
}


def _seeded_digest(url: str) -> dict[str, str]:
    """md5 of the legacy columns of the rows that existed before adoption (the load adds rows
    of its own users only, ids above USERS), per table."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in LEGACY_TABLES:
            cols = [
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_pa\\_%%'"
                    " ORDER BY attnum",
                    (table,),
                ).fetchall()
            ]
            scope = {
                "users": f"id <= {USERS}",
                "security_events": f"id <= {EVENTS}",
                "roles": "true",
                "permissions": "true",
                "role_permissions": "true",
            }.get(table, f"user_id <= {USERS}")
            row_text = " || '|' || ".join(
                f"coalesce(quote_literal(\"{c}\"::text), 'N')" for c in cols
            )
            query = (
                f"SELECT md5(string_agg(md5({row_text}), '' ORDER BY id))"
                f" FROM {table} WHERE {scope}"
            )
            out[table] = str(conn.execute(query.encode()).fetchone()[0])  # type: ignore[index]
    return out


def _backfilled(url: str) -> int:
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(  # seeded rows only: the trigger fills the load's new rows at once
                f"SELECT count(_pa_password_hash) FROM users WHERE id <= {USERS}".encode()
            ).fetchone()
        except psycopg.errors.UndefinedColumn:
            return 0
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_adopt_killed_mid_backfill_then_run_again(make_database: MakeDb) -> None:
    url = make_database()
    create_legacy(url)
    fill_legacy(url, users=USERS, events=EVENTS)
    seeded = _seeded_digest(url)

    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env["DATABASE_URL"] = url
    with LegacyLoad(url) as legacy:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "personal_assistant_db.cli",
                "migrate",
                "adopt",
                "--batch-size",
                "500",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()
        deadline = time.monotonic() + 300
        done = 0
        while proc.poll() is None and time.monotonic() < deadline:
            done = _backfilled(url)
            if 0 < done < USERS:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "adopt finished before it could be killed mid-backfill"
        assert 0 < done < USERS
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, stderr
        killed_at = _backfilled(url)
        print(f"killed after {time.monotonic() - began:.1f} s at {killed_at} of {USERS} users")
        assert killed_at < USERS
        time.sleep(1)  # the legacy app runs on against the half-backfilled database

        unlock = pa_db("unlock", url=url)
        assert unlock.returncode == 0, unlock.stdout + unlock.stderr
        began = time.monotonic()
        again = pa_db("adopt", "--batch-size", "5000", url=url)
        assert again.returncode == 0, again.stdout + again.stderr
        print(f"the second run took {time.monotonic() - began:.1f} s")
        status = pa_db("status", url=url)
        assert "expand applied" in status.stdout, status.stdout
        time.sleep(1)

    assert legacy.stats.errors == [], legacy.stats.errors[:5]
    assert legacy.stats.flows > 0
    assert _seeded_digest(url) == seeded  # no legacy value touched
    with psycopg.connect(url) as conn:
        for table, query in MISMATCHES.items():
            row = conn.execute(query.encode()).fetchone()
            assert row == (0,), f"{table}: {row} rows differ from the mapping"

    # rolling back the finished expand gives back exactly what was there before it
    before = table_checksums(url)
    back = pa_db("rollback", "--steps", "1", url=url)
    assert back.returncode == 0, back.stdout + back.stderr
    assert table_checksums(url) == before
    assert not any(
        kind == "schema" and name == "pa_adopt" for kind, name, *_ in catalog_objects(url)
    )
