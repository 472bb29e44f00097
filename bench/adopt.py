"""Adoption at scale: expand a legacy ai_assistant database while the legacy app keeps writing.

    .venv/bin/python bench/adopt.py [--users 1000000] [--events 2000000] [--batch-size 5000]
                                    [--threads 2] [--baseline 20] [--server-log PATH]

On a fresh database of $DATABASE_URL's server (else embedded pgserver): the legacy layout with
``--users`` users (each with a refresh token and a role, every fifth with MFA, every third with
a phone) and ``--events`` security events, made with ``INSERT ... SELECT generate_series``
(tests/legacy_client.fill_legacy; not timed as adoption). Then:

1. baseline: the legacy app (tests/legacy_client.py, ``--threads`` connections, whole visits:
   register, log in, tokens, roles, permission checks, MFA, events, audit) runs ``--baseline``
   seconds on its own;
2. ``pa-db migrate adopt --batch-size N`` runs as a subprocess, as an operator would, while the
   same load runs;
3. a sampler reads ``pg_locks`` joined with ``pg_stat_activity`` every 50 ms: for every statement
   waiting on a lock, how long it has waited (``now() - query_start``; the longest is reported,
   with whose statement it was: the app's or the adoption's). ``log_lock_waits`` is switched on
   for the database, so the server log (``--server-log``) names every wait longer than
   ``deadlock_timeout`` (1 s): the target is none.

Reported: adoption time, the longest lock wait, the app's statement latency (p50/p99/max) and
visits per second during adoption as ratios to the baseline of the same run, the app's errors
(target 0), and a value check over every row (package columns against the mapping: 0 differ).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
import psycopg  # noqa: E402
import psycopg.conninfo  # noqa: E402
from _common import pct, server_url, table  # noqa: E402
from legacy_client import LegacyLoad, create_legacy, fill_legacy  # noqa: E402

from personal_assistant_db.testing import fresh_database  # noqa: E402

APP = "ai_assistant-legacy"
WAITS = """
SELECT a.pid, a.query_start, extract(epoch FROM now() - a.query_start), a.application_name,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90), l.mode, l.relation::regclass::text
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
"""
# Package columns against the mapping over every row (tests/test_migrate_adoption_kill.py).
CHECKS = {
    "users": "SELECT count(*) FROM users u FULL JOIN pa_adopt.users v USING (id)"
    " WHERE u.id IS NULL OR v.id IS NULL OR v.password_hash IS DISTINCT FROM u.hashed_password"
    " OR v.email IS DISTINCT FROM u.email OR v.phone_number IS DISTINCT FROM u.phone_number"
    " OR v.last_login_at IS DISTINCT FROM (u.last_login AT TIME ZONE 'UTC')",
    "auth_tokens": "SELECT count(*) FROM auth_tokens t FULL JOIN pa_adopt.auth_tokens v USING (id)"
    " WHERE t.id IS NULL OR v.id IS NULL OR (t.token NOT LIKE 'sha256:%%' AND v.token_hash"
    " IS DISTINCT FROM encode(sha256(convert_to(t.token, 'UTF8')), 'hex'))",
    "security_events": "SELECT count(*) FROM security_events e"
    " FULL JOIN pa_adopt.security_events v USING (id) WHERE e.id IS NULL OR v.id IS NULL"
    " OR v.details IS DISTINCT FROM coalesce(e.event_data::jsonb, '{}'::jsonb)"
    " OR v.occurred_at IS DISTINCT FROM (e.created_at AT TIME ZONE 'UTC')",
}


class LockSampler(threading.Thread):
    """The longest time any statement has waited for a lock, sampled every ``interval`` s."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.url, self.interval, self.stop = url, interval, threading.Event()
        self.longest: dict[str, tuple[float, str]] = {}  # "app"/"adoption" -> (s, what)
        self.samples = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                for _pid, _start, waited, app, query, mode, rel in conn.execute(WAITS).fetchall():
                    who = "app" if app == APP else "adoption"
                    if float(waited or 0) > self.longest.get(who, (0.0, ""))[0]:
                        self.longest[who] = (float(waited), f"{mode} on {rel}: {query}")
                self.samples += 1
                time.sleep(self.interval)


def _summary(latencies: list[float]) -> tuple[float, float, float]:
    return pct(latencies, 0.50) * 1e3, pct(latencies, 0.99) * 1e3, max(latencies) * 1e3


def _run_load(url: str, threads: int, seconds: float) -> tuple[LegacyLoad, float]:
    with LegacyLoad(url, threads=threads, prefix="baseline") as load:
        time.sleep(seconds)
    return load, seconds


def _legacy(url: str, args: argparse.Namespace) -> None:
    """Fill ``url`` with the legacy layout, or copy it from ``--template`` when that exists."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        have = (
            args.template
            and conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (args.template,)
            ).fetchone()
        )
        if have:
            conn.execute(f'DROP DATABASE "{name}"'.encode())
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{args.template}"'.encode())
            return
    create_legacy(url)
    fill_legacy(url, users=args.users, events=args.events)
    if args.template:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{args.template}" TEMPLATE "{name}"'.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of load alone")
    parser.add_argument("--server-log", type=Path, help="the server's log, for log_lock_waits")
    parser.add_argument(
        "--migrate-statement-timeout-ms",
        help="DB_MIGRATE_STATEMENT_TIMEOUT_MS for the adopt run (default: the package's, 60000)",
    )
    parser.add_argument(
        "--template",
        help="keep the filled legacy database under this name and copy it on later runs"
        " (a 1 M-user fill takes ~6 min here; the copy seconds)",
    )
    args = parser.parse_args()

    with fresh_database(server_url(), prefix="pa_bench_adopt") as url:
        began = time.perf_counter()
        _legacy(url, args)
        with psycopg.connect(url, autocommit=True) as conn:
            name = conn.info.dbname
            conn.execute(f'ALTER DATABASE "{name}" SET log_lock_waits = on'.encode())
            got = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size = (got.fetchone() or ("?",))[0]
        print(
            f"legacy database: {args.users:,} users, {args.events:,} security events, {size}"
            f" (made in {time.perf_counter() - began:.0f} s, not timed as adoption)"
        )

        base, _ = _run_load(url, args.threads, args.baseline)
        base_visits = len(base.users) / args.baseline

        log_offset = args.server_log.stat().st_size if args.server_log else 0
        sampler = LockSampler(url)
        sampler.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
        env["DATABASE_URL"] = url
        if args.migrate_statement_timeout_ms is not None:
            env["DB_MIGRATE_STATEMENT_TIMEOUT_MS"] = args.migrate_statement_timeout_ms
        with LegacyLoad(url, threads=args.threads, prefix="during") as load:
            time.sleep(2)
            started = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "personal_assistant_db.cli",
                    "migrate",
                    "adopt",
                    "--batch-size",
                    str(args.batch_size),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            adopt_s = time.perf_counter() - started
            print(f"pa-db migrate adopt: exit {proc.returncode} in {adopt_s:.1f} s", flush=True)
            if proc.returncode:
                print(proc.stdout[-3000:], proc.stderr[-3000:], flush=True)
            visits_before = len(load.users)
            time.sleep(2)
        sampler.stop.set()
        sampler.join()
        during_visits = visits_before / (adopt_s + 2)
        log_waits: list[str] = []
        if args.server_log:
            with args.server_log.open(errors="replace") as log:
                log.seek(log_offset)
                log_waits = [
                    line.strip()[:160]
                    for line in log
                    if re.search(r"still waiting for|acquired .* after|deadlock detected", line)
                ]
        differ: dict[str, int] = {}
        if proc.returncode == 0:
            with psycopg.connect(url) as conn:
                for name, query in CHECKS.items():
                    found = conn.execute(query.encode()).fetchone()
                    differ[name] = int(found[0]) if found else -1

    b50, b99, bmax = _summary(base.stats.latencies)
    d50, d99, dmax = _summary(load.stats.latencies)
    rows: list[list[Any]] = [
        [
            "baseline (legacy app alone)",
            f"{base_visits:.1f}",
            f"{b50:.2f}",
            f"{b99:.2f}",
            f"{bmax:.0f}",
            len(base.stats.errors),
        ],
        [
            "during adopt (expand)",
            f"{during_visits:.1f}",
            f"{d50:.2f}",
            f"{d99:.2f}",
            f"{dmax:.0f}",
            len(load.stats.errors),
        ],
        [
            "ratio during / baseline",
            f"{during_visits / base_visits:.2f}",
            f"{d50 / b50:.2f}",
            f"{d99 / b99:.2f}",
            f"{dmax / bmax:.2f}",
            "",
        ],
    ]
    print(table(["legacy app", "visits/s", "p50 ms", "p99 ms", "max ms", "errors"], rows))
    for who in ("app", "adoption"):
        waited, what = sampler.longest.get(who, (0.0, "none seen"))
        print(f"longest lock wait, {who} statement: {waited * 1e3:.0f} ms ({what})")
    print(
        f"lock samples: {sampler.samples};"
        f" server log lines for waits > deadlock_timeout: {len(log_waits)}"
    )
    for line in log_waits[:10]:
        print("  ", line)
    print(f"rows differing from the mapping: {differ}")
    if load.stats.errors:
        print("errors:", *load.stats.errors[:5], sep="\n  ")


if __name__ == "__main__":
    main()
