"""The wheel carries every module and data file, installs into a fresh venv and runs pa-db."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from personal_assistant_db.urls import parse_database_url, to_sync

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "personal_assistant_db"
SHIPPED_SUFFIXES = {".py", ".sql", ".typed", ".html", ".css", ".js", ""}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    # The license metadata once printed ~55 lines of setuptools deprecation warnings per build.
    assert "deprecated" not in built.stderr.lower(), built.stderr
    [wheel_file] = out.glob("personal_assistant_db-*.whl")
    return wheel_file


def test_wheel_metadata_is_spdx_licensed_and_names_no_placeholder_url(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(name).decode()
        licenses = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert "License-Expression: MIT" in metadata
    assert licenses, "the LICENSE file ships in the wheel"
    assert "example.invalid" not in metadata and "Project-URL" not in metadata


def test_wheel_holds_every_source_and_data_file(wheel: Path) -> None:
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in SHIPPED_SUFFIXES
    }
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if n.startswith("personal_assistant_db/")}
    assert expected - shipped == set()
    assert not any("tests/" in n or n.endswith(".pyc") for n in shipped)


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs(
    wheel: Path, tmp_path: Path, make_database: Callable[[], str]
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--disable-pip-version-check", str(wheel)], check=True, timeout=600)
    helped = subprocess.run(
        [str(env_dir / "bin" / "pa-db"), "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: pa-db" in helped.stdout
    check = (
        "import importlib.resources as r, personal_assistant_db as p;"
        "root = r.files('personal_assistant_db');"
        "assert root.joinpath('py.typed').is_file();"
        "print(sorted(x.name for x in root.joinpath('migrations').iterdir()))"
    )
    listed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", check], capture_output=True, text=True, check=True
    )
    source = sorted(p.name for p in (PACKAGE / "migrations").iterdir() if p.is_file())
    assert listed.stdout.strip() == str(source)

    # Plain yoyo, from the installed wheel's package data, up and all the way down.
    url = str(to_sync(parse_database_url(make_database())).render_as_string(hide_password=False))
    yoyo = [str(env_dir / "bin" / "yoyo")]
    source_arg = "package:personal_assistant_db:migrations"
    subprocess.run([*yoyo, "apply", "--batch", "--database", url, source_arg], check=True)
    verified = subprocess.run(
        [str(env_dir / "bin" / "pa-db"), "migrate", "verify", "--database", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    subprocess.run(
        [*yoyo, "rollback", "--all", "--batch", "--database", url, source_arg], check=True
    )
