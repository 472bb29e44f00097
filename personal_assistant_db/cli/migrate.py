"""``pa-db migrate``: status, apply, rollback, verify, lint, assess, unlock, adopt, contract.

The database comes from ``--database URL``, else ``DATABASE_MIGRATE_URL``, else ``DATABASE_URL``
(through ``Settings.from_env``, so ``DB_MIGRATE_*`` timeouts apply). A ``DATABASE_URL`` through
PgBouncer in transaction mode (``DB_POOLER=pgbouncer-transaction``) is refused. Every subcommand
accepts ``--json``. Exit codes: 0 done / clean, 1 the check found problems (drift, lint findings,
verify problems), 2 bad input or the command could not run (nothing was partially applied).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import psycopg

from ..errors import ConfigurationError, MigrationError
from ..migrate import apply, assess, lint, rollback, status, unlock, verify
from ..migrate._assess import as_rows
from ..migrate.runner import describe
from ..migrate.target import Target, refuse_transaction_pooler, target_of
from ..settings import Settings
from . import adopt as _adopt

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", help="database URL (default: DATABASE_URL)")
    common.add_argument(
        "--schema",
        metavar="NAME",
        help="keep our tables and yoyo's history in this existing schema (same as ?schema=)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    common.add_argument(
        "--lock-wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for another runner's migration lock (default 10)",
    )
    sub = parser.add_subparsers(dest="migrate_command", metavar="SUBCOMMAND", required=True)
    sub.add_parser("status", parents=[common], help="applied and pending migrations, and drift")
    p = sub.add_parser("apply", parents=[common], help="apply pending migrations")
    p.add_argument("--to", metavar="ID", help="stop after this migration")
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p = sub.add_parser("rollback", parents=[common], help="roll back (always explicit)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--to", metavar="ID", help="roll back everything after ID (ID stays)")
    group.add_argument("--steps", type=int, metavar="N", help="roll back the newest N")
    group.add_argument("--all", action="store_true", help="roll back every migration")
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument(
        "--allow-lossy",
        action="store_true",
        help="roll back adoption's contract although it cannot restore everything",
    )
    sub.add_parser("verify", parents=[common], help="drift, schema snapshot, validity, orphans")
    sub.add_parser("lint", parents=[common], help="squawk over the migration SQL (no database)")
    p = sub.add_parser("assess", parents=[common], help="locks/rewrites/durations on a scratch DB")
    p.add_argument("id", nargs="?", metavar="ID", help="migration to assess (default: pending)")
    sub.add_parser("unlock", parents=[common], help="remove a stale migration lock row")
    _adopt.configure(sub, common)


def _target(args: argparse.Namespace) -> Target:
    environ = dict(os.environ)
    if args.database:  # the URL given on the command line is the one to use, as it is
        environ["DATABASE_URL"] = args.database
        environ.pop("DATABASE_MIGRATE_URL", None)
        environ.pop("DB_POOLER", None)
    settings = Settings.from_env(environ)
    if args.schema:
        refuse_transaction_pooler(settings)
        query = {**settings.migrate_sync_url.query, "schema": args.schema}
        return target_of(
            settings.migrate_sync_url.set(query=query),
            lock_timeout_ms=settings.migrate_lock_timeout_ms,
            statement_timeout_ms=settings.migrate_statement_timeout_ms,
        )
    return target_of(settings)


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        for line in lines:
            print(line)


def run(args: argparse.Namespace) -> int:
    command = args.migrate_command
    try:
        if command == "lint":
            return _lint(args)
        target = _target(args)
        handler = _HANDLERS[command]
        return handler(args, target)
    except ConfigurationError as exc:
        return _fail(args, str(exc))
    except MigrationError as exc:
        return _fail(args, f"migrate {command}: {exc}")
    except psycopg.Error as exc:  # anything the API did not translate: still no traceback
        return _fail(args, f"migrate {command}: database error: {describe(exc)}")


def _fail(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": message}, indent=2))
    else:
        print(f"pa-db: {message}", file=sys.stderr)
    return 2


def _status(args: argparse.Namespace, target: Target) -> int:
    report = status(target)
    lines = [f"database: {target.safe_url}"]
    lines += [f"  applied  {i}" for i in report.applied]
    lines += [f"  pending  {i}" for i in report.pending]
    lines += [f"  unknown  {i} (applied, not shipped)" for i in report.unknown]
    lines += [f"  drift    {d}" for d in report.drift]
    if report.lock:
        lines.append(f"  lock     {report.lock}")
    if report.adoption:
        lines.append(f"  adoption {report.adoption}")
    lines.append("at head" if report.at_head else f"{len(report.pending)} pending")
    payload = {
        "ok": not report.drift,
        "applied": list(report.applied),
        "pending": list(report.pending),
        "unknown": list(report.unknown),
        "drift": list(report.drift),
        "at_head": report.at_head,
        "lock": report.lock,
        "adoption": report.adoption,
    }
    _emit(args, payload, lines)
    return 1 if report.drift else 0


def _apply(args: argparse.Namespace, target: Target) -> int:
    done = apply(target, to=args.to, dry_run=args.dry_run, lock_wait=args.lock_wait)
    verb = "would apply" if args.dry_run else "applied"
    lines = [f"{verb} {i}" for i in done] or ["nothing to apply"]
    _emit(args, {"ok": True, "dry_run": args.dry_run, verb.replace(" ", "_"): done}, lines)
    return 0


def _rollback(args: argparse.Namespace, target: Target) -> int:
    done = rollback(
        target,
        to=args.to,
        steps=args.steps,
        all=args.all,
        dry_run=args.dry_run,
        lock_wait=args.lock_wait,
        allow_lossy=args.allow_lossy,
    )
    verb = "would roll back" if args.dry_run else "rolled back"
    lines = [f"{verb} {i}" for i in done] or ["nothing to roll back"]
    _emit(args, {"ok": True, "dry_run": args.dry_run, verb.replace(" ", "_"): done}, lines)
    return 0


def _verify(args: argparse.Namespace, target: Target) -> int:
    report = verify(target)
    lines = [f"  note: {n}" for n in report.notes] + [f"  {p}" for p in report.problems]
    lines.append(
        f"verify: OK ({len(report.applied)} applied)"
        if report.ok
        else f"verify: {len(report.problems)} problem(s)"
    )
    payload = {
        "ok": report.ok,
        "applied": list(report.applied),
        "problems": list(report.problems),
        "notes": list(report.notes),
    }
    _emit(args, payload, lines)
    return 0 if report.ok else 1


def _lint(args: argparse.Namespace) -> int:
    findings = lint()
    lines = [str(f) for f in findings] + [f"lint: {len(findings)} finding(s)"]
    payload = {"ok": not findings, "findings": [vars(f) for f in findings]}
    _emit(args, payload, lines)
    return 1 if findings else 0


def _assess(args: argparse.Namespace, target: Target) -> int:
    impacts = assess(target, args.id)
    rows = as_rows(impacts)
    header = f"{'migration':<24} {'ms':>8}  {'rewrites':<16} {'locks':<40} statement"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r['migration']:<24} {r['duration_ms']:>8.2f}  "
            f"{','.join(r['rewritten']) or '-':<16} {'; '.join(r['locks']) or '-':<40} "
            f"{r['statement']}"
        )
    if not rows:
        lines = ["nothing to assess: no pending migrations (name one: assess ID)"]
    _emit(args, {"ok": True, "statements": rows}, lines)
    return 0


def _unlock(args: argparse.Namespace, target: Target) -> int:
    removed = unlock(target)
    _emit(args, {"ok": True, "removed": removed}, [f"removed {removed} lock row(s)"])
    return 0


_HANDLERS = {
    "status": _status,
    "apply": _apply,
    "rollback": _rollback,
    "verify": _verify,
    "assess": _assess,
    "unlock": _unlock,
    "adopt": _adopt.run_adopt,
    "contract": _adopt.run_contract,
}
