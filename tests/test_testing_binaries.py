"""Server binaries per version (testing/binaries.py): the embedded default ships contrib, a bad
choice names the variable, a version nobody provides names every source tried."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from personal_assistant_db.testing import (
    BinariesUnavailable,
    chosen_binaries,
    embedded_bindir,
    embedded_server_url,
    postgres_binaries,
)


def test_the_embedded_default_is_18_with_pg_stat_statements_and_pg_basebackup() -> None:
    binaries = chosen_binaries("embedded")
    assert binaries is not None and binaries.bindir == embedded_bindir()
    assert binaries.has_pg_stat_statements
    assert (binaries.bindir / "pg_basebackup").exists()
    out = subprocess.run(
        [str(binaries.bindir / "postgres"), "--version"], capture_output=True, text=True
    )
    assert out.stdout.startswith("postgres (PostgreSQL) 18.")


def test_unset_means_the_harness_default() -> None:
    assert chosen_binaries(None) is None and chosen_binaries("") is None


@pytest.mark.parametrize("bad", ["latest", "18.6", "pg18"])
def test_a_bad_choice_names_the_variable_and_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"PA_DB_TEST_POSTGRES: expected 'embedded' or a"):
        chosen_binaries(bad)
    with pytest.raises(ValueError, match=r"--postgres: expected"):
        chosen_binaries(bad, name="--postgres")


def test_a_version_nobody_ships_names_every_source_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PA_DB_PG_BINARIES", str(tmp_path))
    with pytest.raises(BinariesUnavailable) as caught:
        postgres_binaries("13")
    message = str(caught.value)
    assert message.startswith("PostgreSQL 13: ")
    assert "/usr/lib/postgresql/13/bin" in message and "no pip package" in message
    assert list(tmp_path.iterdir()) == []  # nothing fetched for a version nobody ships


def test_each_version_reports_the_major_version_it_was_asked_for() -> None:
    """Every source the matrix uses starts the version it claims (when it can be had here)."""
    for version in ("14", "15", "16", "18"):
        try:
            binaries = postgres_binaries(version)
        except BinariesUnavailable:
            continue  # the matrix shows the reason; nothing to check here
        out = subprocess.run(
            [str(binaries.bindir / "postgres"), "--version"], capture_output=True, text=True
        )
        assert out.stdout.startswith(f"postgres (PostgreSQL) {version}."), out.stdout


def test_the_embedded_server_refuses_another_versions_data_directory(tmp_path: Path) -> None:
    """A data directory left by the former embedded default (pgserver, 16) is named, not
    half-started: PostgreSQL 18 cannot open a 16 cluster."""
    (tmp_path / "PG_VERSION").write_text("16\n")
    with pytest.raises(
        RuntimeError, match=r"holds a PostgreSQL 16 data directory.*is PostgreSQL 18"
    ):
        embedded_server_url(tmp_path)
