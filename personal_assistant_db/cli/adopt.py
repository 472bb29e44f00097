"""``pa-db migrate adopt`` and ``pa-db migrate contract``: arguments and rendering.

The work is done by ``personal_assistant_db.migrate.adopt`` / ``contract`` (data in, data out);
this module adds their arguments to ``pa-db migrate`` and renders their reports. Rows are shown
by table and primary key, never by value.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..migrate import adopt, contract
from ..migrate.adoption.report import AdoptionReport, ContractReport, Finding
from ..migrate.target import Target

__all__ = ["configure", "run_adopt", "run_contract"]


def configure(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "adopt", parents=[common], help="adopt an existing ai_assistant database (expand)"
    )
    p.add_argument(
        "--check", action="store_true", help="apply nothing: the layout and the rows it refuses"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=5_000,
        metavar="N",
        help="ids per backfill transaction (default 5000)",
    )
    p = sub.add_parser("contract", parents=[common], help="finish adoption: drop the legacy shape")
    p.add_argument(
        "--accept-loss",
        action="append",
        default=[],
        metavar="TABLE.COLUMN",
        help="go ahead although these legacy values do not survive (repeatable)",
    )
    p.add_argument(
        "--grant-package-permissions",
        action="store_true",
        help="also grant the package's permissions to the app's roles of the same names",
    )


def _finding_lines(findings: tuple[Finding, ...]) -> list[str]:
    lines = []
    for f in findings:
        keys = ", ".join(f.keys) + (" ..." if f.count > len(f.keys) else "")
        mark = "DECIDE" if f.needs_decision else "ok"
        lines.append(f"  [{mark}] {f.table}.{f.rule}: {f.count} row(s) ({keys})")
        lines.append(f"         {f.action}")
        if f.decision:
            lines.append(f"         -> {f.decision}")
    return lines


def _print(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print("\n".join(lines))


def run_adopt(args: argparse.Namespace, target: Target) -> int:
    report: AdoptionReport = adopt(
        target, check=args.check, batch_size=args.batch_size, lock_wait=args.lock_wait
    )
    lines = [f"database: {target.safe_url} (schema {report.schema})", report.message]
    lines += [f"  differs: {d}" for d in report.differences]
    lines += [f"  kept (the app's own): {e}" for e in report.extras]
    lines += _finding_lines(report.findings)
    lines += [f"applied {i}" for i in report.applied]
    _print(args, report.as_dict(), lines)
    return report.exit_code


def run_contract(args: argparse.Namespace, target: Target) -> int:
    report: ContractReport = contract(
        target,
        accept_loss=tuple(args.accept_loss),
        grant_package_permissions=args.grant_package_permissions,
        lock_wait=args.lock_wait,
    )
    lines = [f"database: {target.safe_url}", report.message]
    lines += _finding_lines(report.blocking)
    lines += [f"  moved {c}" for c in report.moved]
    lines += [f"  dropped {c}" for c in report.dropped]
    lines += [f"  accepted loss: {c}" for c in report.accepted_loss]
    lines += [f"  merged: {m}" for m in report.merged]
    if report.swap_seconds is not None:
        lines.append(f"  the swap held its exclusive locks for {report.swap_seconds:.3f} s")
    _print(args, report.as_dict(), lines)
    return report.exit_code
