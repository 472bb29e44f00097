"""The cost of adoption's expand phase, measured: ``python -m bench.adoption``.

- trigger cost on inserts: single-row INSERTs (``--inserts`` per transaction) into the legacy
  ``users`` and ``security_events`` tables as the old app writes them, on the expanded tables
  with the sync trigger disabled (the baseline: what the table costs without it) and enabled,
  interleaved round by round; the ratio is with / without;
- the same INSERTs by the new version through the ``pa_adopt`` views;
- backfill throughput: rows per second of the batched backfill (``--rows`` users and twice as
  many security events);
- contract: its total time, and how long its one exclusive-lock transaction (the swap) took.

Prints the figures beside the baseline of the same run, as ratios. ``--rounds`` repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench._common import server_url, table  # noqa: E402
from personal_assistant_db.migrate.adoption import adopt, contract, legacy_ddl  # noqa: E402
from personal_assistant_db.migrate.adoption.backfill import backfill  # noqa: E402
from personal_assistant_db.testing import fresh_database  # noqa: E402

LEGACY_USER = (
    "INSERT INTO users (email, hashed_password, full_name, is_active, created_at, updated_at)"
    " VALUES (%s, '$2b$12$abcdefghijklmnopqrstuv', 'A Name', true, now() AT TIME ZONE 'UTC',"
    " now() AT TIME ZONE 'UTC')"
)
LEGACY_EVENT = (
    "INSERT INTO security_events (user_id, event_type, event_data, severity, ip_address,"
    " created_at) VALUES (1, 'login_ok', '{\"a\": 1}', 'info', '192.0.2.1',"
    " now() AT TIME ZONE 'UTC')"
)
NEW_USER = (
    "INSERT INTO pa_adopt.users (email, password_hash, display_name) VALUES (%s,"
    " '$2b$12$abcdefghijklmnopqrstuv', 'A Name')"
)
NEW_EVENT = (
    "INSERT INTO pa_adopt.security_events (user_id, event_type, details, severity, ip_address)"
    " VALUES (1, 'login_ok', '{\"a\": 1}', 'info', '192.0.2.1')"
)


def _rate(conn: psycopg.Connection, sql: str, n: int, tag: str, user: bool) -> float:
    """INSERTs per second, ``n`` of them in one transaction (commit cost left out)."""
    began = time.perf_counter()
    with conn.transaction():
        for i in range(n):
            if user:
                conn.execute(sql, (f"{tag}{i}@example.org",))
            else:
                conn.execute(sql)
    return n / (time.perf_counter() - began)


def _trigger(conn: psycopg.Connection, on: bool) -> None:
    verb = "ENABLE" if on else "DISABLE"
    for t in ("users", "security_events"):
        conn.execute(f"ALTER TABLE {t} {verb} TRIGGER _pa_adopt_sync_{t}".encode())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="users to backfill")
    parser.add_argument("--inserts", type=int, default=2_000, help="INSERTs per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with fresh_database(server_url(), prefix="pa_bench_adopt") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(legacy_ddl().encode())
            conn.execute(
                "INSERT INTO users (email, hashed_password, created_at) SELECT 'u' || g ||"
                " '@example.org', '$2b$12$x', now() AT TIME ZONE 'UTC'"
                " FROM generate_series(1, %s) g",
                (args.rows,),
            )
            conn.execute(
                "INSERT INTO security_events (user_id, event_type, severity, ip_address,"
                " created_at) SELECT 1 + g %% %s, 'login_ok', 'info', '192.0.2.1',"
                " now() AT TIME ZONE 'UTC' FROM generate_series(1, %s) g",
                (args.rows, 2 * args.rows),
            )
            conn.execute("VACUUM ANALYZE")
        began = time.perf_counter()
        report = adopt(url, batch_size=5_000)
        expand_s = time.perf_counter() - began
        with psycopg.connect(url, autocommit=True) as conn:
            for r in range(args.rounds):
                for on in (False, True):
                    _trigger(conn, on)
                    label = "trigger" if on else "no trigger"
                    results.setdefault(f"legacy users, {label}", []).append(
                        _rate(conn, LEGACY_USER, args.inserts, f"{label[:2]}{r}x", True)
                    )
                    results.setdefault(f"legacy events, {label}", []).append(
                        _rate(conn, LEGACY_EVENT, args.inserts, "", False)
                    )
                results.setdefault("new users via view", []).append(
                    _rate(conn, NEW_USER, args.inserts, f"n{r}x", True)
                )
                results.setdefault("new events via view", []).append(
                    _rate(conn, NEW_EVENT, args.inserts, "", False)
                )
            # the rows inserted while the trigger was disabled (the baseline) were never synced
            for t in ("users", "security_events"):
                backfill(conn, t, batch_size=5_000)
        began = time.perf_counter()
        done = contract(url)
        contract_s = time.perf_counter() - began
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = []
    for name, value in med.items():
        base = med["legacy users, no trigger" if "users" in name else "legacy events, no trigger"]
        spread = f"{min(results[name]):,.0f}-{max(results[name]):,.0f}"
        rows.append((name, f"{value:,.0f}/s", spread, f"{value / base:.2f}"))
    print(table(("INSERT, one transaction", "median", "range", "vs no trigger"), rows))
    print(
        f"expand (DDL, views, backfill) of {args.rows:,} users + {2 * args.rows:,} security"
        f" events: {expand_s:.1f} s, {3 * args.rows / expand_s:,.0f} rows/s ({report.verdict})"
    )
    print(
        f"contract: {contract_s:.1f} s in all (constraints validated, indexes built online);"
        f" the one exclusive-lock transaction (the swap) took {done.swap_seconds:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
