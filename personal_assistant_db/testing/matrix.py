"""The version matrix: the version-sensitive tests on every PostgreSQL version, as a table.

``bash scripts/pg-matrix`` runs ``python -m personal_assistant_db.testing.matrix``. For each
version it gets the binaries (``postgres_binaries``), starts a throwaway server of that version
and runs the areas' test files once under pytest with ``DATABASE_URL`` set to that server and
``PA_DB_TEST_POSTGRES`` set to the version, so the tests' own throwaway servers and replicas use
the same binaries. Each test file belongs to one area; the table has a row per version and a
cell per area: pass, fail or skipped with the reason. A version whose binaries cannot be had is
skipped with the reason; one that cannot start says why in its row and fails the run; either way
the other versions still run. The exit status is 1 when any cell failed.

``--junit VERSION=FILE`` takes a version's results from a JUnit XML file of a run already made
(.ci/run's full-suite passes), so those versions are not run twice.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .binaries import VERSIONS, BinariesUnavailable, postgres_binaries
from .postgres import ThrowawayServer

__all__ = ["AREAS", "Cell", "Row", "area_files", "cells_from_junit", "main", "render"]

AREAS: dict[str, tuple[str, ...]] = {
    "migrations": (
        "test_migrate.py",
        "test_migrate_state.py",
        "test_migrate_snapshot.py",
        "test_migrate_cli.py",
        "test_migrate_verify*.py",
    ),
    "adoption": ("test_migrate_adopt*.py",),
    "doctor": (
        "test_doctor.py",
        "test_doctor_stats.py",
        "test_doctor_versions.py",
        "test_cli_doctor.py",
    ),
    "replicas": (
        "test_testing_replicas.py",
        "test_replicas.py",
        "test_replicas_consistency.py",
        "test_replicas_statements.py",
        "test_failover.py",
    ),
    "health": ("test_health_app.py", "test_health_failures.py", "test_database.py"),
    "statements": ("test_fastpath.py", "test_fastpath_equivalence.py", "test_fastpath_wire.py"),
}
"""Area -> test-file patterns under tests/ (a pattern that matches nothing is left out)."""


@dataclass
class Cell:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.failed:
            return f"FAIL {self.failed} of {self.passed + self.failed + self.skipped}"
        if self.passed:
            return f"pass {self.passed}" + (f" (skip {self.skipped})" if self.skipped else "")
        if self.reasons:
            return f"skipped: {self.reasons[0][:60]}"
        return "skipped" if self.skipped else "skipped: no tests"


@dataclass
class Row:
    version: str
    source: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)
    note: str = ""  # why the whole version did not run
    failed: bool = False
    seconds: float = 0.0


def area_files(tests: Path) -> dict[str, list[Path]]:
    """The test files each area has on this checkout."""
    return {
        area: sorted({p for pattern in patterns for p in tests.glob(pattern)})
        for area, patterns in AREAS.items()
    }


def cells_from_junit(xml: Path, files: dict[str, list[Path]]) -> dict[str, Cell]:
    """Count each area's outcomes in a pytest JUnit XML report."""
    module_area = {f"tests.{p.stem}": area for area, paths in files.items() for p in paths}
    cells = {area: Cell() for area in AREAS}
    for case in ET.parse(xml).getroot().iter("testcase"):  # noqa: S314 - our own pytest's file
        area = module_area.get(case.get("classname", "").rsplit(".", 1)[0]) or module_area.get(
            case.get("classname", "")
        )
        if area is None:
            continue
        cell = cells[area]
        if case.find("failure") is not None or case.find("error") is not None:
            cell.failed += 1
        elif (skip := case.find("skipped")) is not None:
            cell.skipped += 1
            cell.reasons.append(skip.get("message", ""))
        else:
            cell.passed += 1
    for area, paths in files.items():
        if not paths:
            cells[area].reasons.append("no " + " ".join(AREAS[area]) + " on this checkout")
    return cells


def run_version(version: str, files: dict[str, list[Path]], workdir: Path) -> Row:
    row = Row(version)
    began = time.monotonic()
    try:
        binaries = postgres_binaries(version)
    except BinariesUnavailable as exc:
        row.note = f"skipped: {exc}"
        return row
    row.source = binaries.source
    server = ThrowawayServer(workdir / f"pg{version}", bindir=binaries.bindir)
    try:
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        row.note = f"cannot start: {(text.strip() or str(exc))[-200:]}"
        row.failed = True
        server.cleanup()
        return row
    xml = workdir / f"junit-{version}.xml"
    argv = [str(p) for paths in files.values() for p in paths]
    env = {**os.environ, "DATABASE_URL": server.url, "PA_DB_TEST_POSTGRES": version}
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={xml}",
                *argv,
            ],
            env=env,
            check=False,
        )
    finally:
        server.cleanup()
    row.seconds = time.monotonic() - began
    if not xml.exists():
        row.note, row.failed = "pytest wrote no report", True
        return row
    row.cells = cells_from_junit(xml, files)
    row.failed = any(c.failed for c in row.cells.values())
    return row


def render(rows: Sequence[Row]) -> str:
    """The table: a row per version, a column per area (Markdown)."""
    head = ["version", "source", *AREAS, "time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row.note:
            lines.append(f"| {row.version} | {row.source or '-'} | {row.note} |")
            continue
        cells = [row.cells[a].text for a in AREAS]
        lines.append(
            f"| {row.version} | {row.source} | " + " | ".join(cells) + f" | {row.seconds:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/pg-matrix", description=__doc__)
    parser.add_argument(
        "--versions",
        default=",".join(VERSIONS),
        help="comma-separated major versions (default: %(default)s)",
    )
    parser.add_argument(
        "--junit",
        action="append",
        default=[],
        metavar="VERSION=FILE",
        help="take VERSION's results from a JUnit XML report instead of running it",
    )
    args = parser.parse_args(argv)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    bad = [v for v in versions if not v.isdigit()]
    if bad:
        parser.error(f"--versions: expected major versions such as 14,18, got {bad!r}")
    given: dict[str, Path] = {}
    for item in args.junit:
        version, _, path = item.partition("=")
        if not version.isdigit() or not Path(path).is_file():
            parser.error(f"--junit: expected VERSION=FILE with an existing file, got {item!r}")
        given[version] = Path(path)
    files = area_files(Path("tests"))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pa-db-matrix-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the servers' system user enters its directory
        for version in sorted({*versions, *given}, key=int):
            if version in given:
                row = Row(version, source="full suite (JUnit report)")
                row.cells = cells_from_junit(given[version], files)
                row.failed = any(c.failed for c in row.cells.values())
            else:
                print(f"== pg-matrix: PostgreSQL {version}", flush=True)
                row = run_version(version, files, Path(tmp))
            rows.append(row)
    print(render(rows))
    failed = [r.version for r in rows if r.failed]
    if failed:
        print(f"pg-matrix: failures on PostgreSQL {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
