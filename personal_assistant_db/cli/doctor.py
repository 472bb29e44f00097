"""``pa-db doctor``: run the optimization analyses on DATABASE_URL and print a report.

Exit codes: 0 no finding at or above ``--fail-on`` (default error), 1 findings, 2 could not run
(bad settings or flags, no connection).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from dataclasses import replace

from sqlalchemy.exc import DBAPIError

from ..database import Database
from ..doctor.analysis import analyze
from ..doctor.findings import Report, Severity
from ..doctor.render import render_json, render_text
from ..errors import PaDbError
from ..settings import Settings

_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_memory(value: str) -> int:
    """'8GB', '512MB', '17179869184' -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", value.upper())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 8GB or 512MB, got {value!r}")
    unit = match.group(2)
    unit = unit if unit.endswith("B") or not unit else unit + "B"
    return int(float(match.group(1)) * _UNITS[unit])


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def _level(value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--schema", help="analyse one schema (default: all user schemas)")
    parser.add_argument(
        "--since-reset",
        action="store_true",
        help="judge unused indexes on the statistics since the last reset, however short",
    )
    parser.add_argument(
        "--fail-on",
        type=_level,
        default=Severity.ERROR,
        metavar="LEVEL",
        help="exit 1 when a finding is at least this severe: info, warning, error (default)",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="app processes sharing the server: pods x workers per pod (default: $WEB_CONCURRENCY"
        " or 1); each opens up to DB_POOL_SIZE + DB_MAX_OVERFLOW per node",
    )
    parser.add_argument(
        "--server-cores",
        type=_positive,
        metavar="N",
        help="CPU cores of the database machine (default: this machine's)",
    )
    parser.add_argument(
        "--machine-memory",
        type=parse_memory,
        metavar="SIZE",
        help="memory of the database machine, e.g. 16GB",
    )
    parser.add_argument(
        "--pooler-max-client-conn",
        type=_positive,
        default=100,
        metavar="N",
        help="behind PgBouncer (DB_POOLER): its max_client_conn (default 100, its own default)",
    )
    parser.add_argument(
        "--pooler-pool-size",
        type=_positive,
        metavar="N",
        help="behind PgBouncer: server connections it may open (default_pool_size + reserve)",
    )
    parser.add_argument(
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colour in text output (auto: only on a TTY)",
    )


async def _run(
    args: argparse.Namespace, settings: Settings, app: str, pool: tuple[int, int], workers: int
) -> Report:
    """``app`` and ``pool``: the application's name and DB_POOL_SIZE/DB_MAX_OVERFLOW, not the
    doctor's own one-connection settings."""
    db = Database(settings)
    await db.start()
    try:
        async with db.connect() as conn:
            return await analyze(
                conn,
                schema=args.schema,
                application_name=app,
                workers=workers,
                pool_size=pool[0],
                max_overflow=pool[1],
                server_cores=args.server_cores,
                machine_memory=args.machine_memory,
                since_reset=args.since_reset,
                slow_ms=settings.slow_query_ms or 500.0,
                pooler=settings.pooler,
                pooler_max_client_conn=args.pooler_max_client_conn,
                pooler_pool_size=args.pooler_pool_size,
                replicas=len(settings.replica_urls),
            )
    finally:
        await db.stop()


def run(args: argparse.Namespace) -> int:
    workers = args.workers
    if workers is None:
        raw = os.environ.get("WEB_CONCURRENCY", "1")
        try:
            workers = _positive(raw)
        except argparse.ArgumentTypeError as exc:
            print(f"pa-db doctor: WEB_CONCURRENCY: {exc}", file=sys.stderr)
            return 2
    try:
        base = Settings.from_env()
        # The doctor's own session must not count as the app's: its own application_name, one
        # connection, no warm-up, a short connect deadline.
        settings = replace(
            base,
            application_name=f"{base.application_name[:55]}-doctor",
            pool_size=1,
            max_overflow=0,
            warmup_connections=0,
            connect_retry_deadline=min(base.connect_retry_deadline, 5.0),
        )
        report = asyncio.run(
            _run(
                args, settings, base.application_name, (base.pool_size, base.max_overflow), workers
            )
        )
    except PaDbError as exc:
        print(f"pa-db doctor: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:  # the connection broke mid-run: no DSN, just the class
        print(
            f"pa-db doctor: lost the database connection ({type(exc.orig).__name__})",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(render_json(report))
    else:
        colour = args.colour == "always" or (args.colour == "auto" and sys.stdout.isatty())
        sys.stdout.write(render_text(report, colour=colour))
    return 1 if report.at_least(args.fail_on) else 0
