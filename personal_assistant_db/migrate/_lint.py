"""``pa-db migrate lint``: squawk over every shipped migration and rollback file.

yoyo wraps a transactional migration in a transaction, so its files (apply and rollback) are
linted with ``--assume-in-transaction``; a ``-- transactional: false`` migration is linted as it
runs, outside one. Deliberate exceptions carry a ``-- squawk-ignore <rule>`` comment next to the
statement, with the reason on the line above. The rules excluded for every file (the runner sets
the timeouts itself) match ``.squawk.toml`` at the repository root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import MigrationError
from .source import ShippedMigration, shipped

__all__ = ["EXCLUDED_RULES", "LintFinding", "lint"]

# The runner sets lock_timeout and statement_timeout on every migration's connection.
EXCLUDED_RULES = ("require-timeout-settings",)
PG_VERSION = "15.0"


@dataclass(frozen=True)
class LintFinding:
    file: str
    line: int  # 1-based
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


def squawk_binary() -> str:
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        raise MigrationError("squawk is not installed: pip install 'squawk-cli>=2.0,<3'")
    return found


def _run(paths: list[Path], *, in_transaction: bool) -> list[LintFinding]:
    argv = [
        squawk_binary(),
        "--reporter",
        "json",
        f"--pg-version={PG_VERSION}",
        f"--exclude={','.join(EXCLUDED_RULES)}",
    ]
    if in_transaction:
        argv.append("--assume-in-transaction")
    done = subprocess.run(
        [*argv, *map(str, paths)], capture_output=True, text=True, timeout=60, check=False
    )
    out = done.stdout.strip()
    try:
        items = json.loads(out) if out else []
    except json.JSONDecodeError:
        raise MigrationError(
            f"squawk failed (exit {done.returncode}): {done.stderr.strip()}"
        ) from None
    if done.returncode not in (0, 1) and not items:
        raise MigrationError(f"squawk failed (exit {done.returncode}): {done.stderr.strip()}")
    return [
        LintFinding(
            file=Path(i["file"]).name,
            line=int(i["line"]) + 1,
            rule=str(i["rule_name"]),
            message=str(i["message"]),
        )
        for i in items
    ]


def lint(migrations: tuple[ShippedMigration, ...] | None = None) -> list[LintFinding]:
    """Every squawk finding over the shipped migrations (empty means clean)."""
    chosen = shipped() if migrations is None else migrations
    findings: list[LintFinding] = []
    for in_tx in (True, False):
        paths = [
            p for m in chosen if m.transactional == in_tx for p in (m.apply_path, m.rollback_path)
        ]
        if paths:
            findings.extend(_run(paths, in_transaction=in_tx))
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))
