"""A real PgBouncer for tests and benchmarks (re-exported by ``testing``).

Debian's ``pgbouncer`` refuses to run as root, so as root it runs as the ``postgres`` system user
(or a ``pgbouncer`` user created here). Its ini, userlist, pidfile, log and unix socket live in a
temporary directory owned by that user; it listens on a free 127.0.0.1 port in front of any
PostgreSQL URL (TCP or a unix socket directory). ``INI_TEMPLATE`` is the ini that
docs/scaling.md shows (tests/test_pooler.py checks they are the same text).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from .postgres import ScratchProcess, free_port, unprivileged_user

__all__ = ["INI_TEMPLATE", "PgBouncer", "PgBouncerUnavailable", "find_pgbouncer"]

INI_TEMPLATE = """\
[databases]
; any database name is passed through to the one server
* = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {dir}
pool_mode = {pool_mode}
; server connections per database/user pair: far fewer than the clients
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
; the tests trust local connections; in production use scram-sha-256 + auth_file/auth_query
auth_type = trust
auth_file = {dir}/userlist.txt
admin_users = postgres
; session mode: forget session state when a client leaves
server_reset_query = DISCARD ALL
; a restarted PostgreSQL: reconnect quickly
server_login_retry = 1
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


class PgBouncerUnavailable(RuntimeError):
    """PgBouncer is not installed and cannot be installed here (the message says why)."""


def find_pgbouncer(*, install: bool = True) -> str:
    """The pgbouncer binary; as root on Debian, ``apt-get install -y pgbouncer`` when missing."""
    for candidate in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not install:
        raise PgBouncerUnavailable("pgbouncer is not installed")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PgBouncerUnavailable(
            "pgbouncer is not installed, and installing it needs root and apt-get "
            "(apt-get install -y pgbouncer)"
        )
    result = subprocess.run(
        ["apt-get", "install", "-y", "pgbouncer"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if result.returncode != 0 or not os.access("/usr/sbin/pgbouncer", os.X_OK):
        raise PgBouncerUnavailable(f"apt-get install -y pgbouncer failed: {result.stderr[-300:]}")
    return "/usr/sbin/pgbouncer"


def _server_of(server_url: str) -> str:
    """The ``[databases]`` connection string for a PostgreSQL URL (TCP or ``?host=/dir``)."""
    url = make_url(server_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    parts = [f"host={host}", f"port={url.port or 5432}"]
    return " ".join(parts)


class PgBouncer(ScratchProcess):
    """A PgBouncer process in front of ``server_url``; ``url(database)`` is the client URL.

    ``start()``/``stop()``; ``reload()`` (admin console ``RELOAD``); ``kill()`` (SIGKILL, the
    outage a crashed pooler causes); ``restart()`` (kill, then start on the same port).
    """

    def __init__(
        self,
        server_url: str,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 4,
        max_client_conn: int = 400,
        base_dir: str | Path | None = None,
    ) -> None:
        if pool_mode not in {"session", "transaction", "statement"}:
            raise ValueError(f"pool_mode must be session, transaction or statement: {pool_mode!r}")
        self.binary = find_pgbouncer()
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.server = _server_of(server_url)
        self.user = _system_user(self.server)
        self._owned_dir = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="pa-db-pgbouncer-"))
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<PgBouncer 127.0.0.1:{self.port} {self.pool_mode} running={self.running}>"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def ini_path(self) -> Path:
        return self.base / "pgbouncer.ini"

    @property
    def log_path(self) -> Path:
        return self.base / "pgbouncer.log"

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        """A client URL through this PgBouncer."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def url_for(self, database_url: str) -> str:
        """``database_url``'s database and user, through this PgBouncer."""
        url = make_url(database_url)
        return self.url(url.database or "postgres", url.username or "postgres")

    def render_ini(self) -> str:
        return INI_TEMPLATE.format(
            server=self.server,
            port=self.port,
            dir=self.base,
            pool_mode=self.pool_mode,
            pool_size=self.pool_size,
            max_client_conn=self.max_client_conn,
        )

    def _write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.ini_path.write_text(self.render_ini())
        (self.base / "userlist.txt").write_text('"postgres" ""\n')
        if self.user is not None:
            os.chmod(self.base, 0o755)  # noqa: S103 - the pooler user must enter its directory
            parent = self.base.parent
            while parent != parent.parent:  # traverse only, as ThrowawayServer does
                os.chmod(parent, os.stat(parent).st_mode | 0o011)  # noqa: S103
                parent = parent.parent
            for path in (self.base, *self.base.iterdir()):
                shutil.chown(path, self.user)

    def start(self, timeout: float = 10.0) -> None:
        """Start in the foreground (our child) and wait until the port accepts connections."""
        if self.running:
            return
        self._write_config()
        log = (self.base / "stderr.log").open("ab")
        self._process = subprocess.Popen(
            [self.binary, str(self.ini_path)],
            stdout=log,
            stderr=log,
            user=self.user,
            cwd=str(self.base),
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start: {self.tail_log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen within {timeout:g}s: {self.tail_log()}")

    def _console(self, command: str) -> tuple[list[str], list[tuple[object, ...]]]:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=postgres",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            # The admin console speaks the simple query protocol only.
            cursor = conn.execute(command.encode(), prepare=False)
            names = [c.name for c in cursor.description or ()]
            return names, list(cursor.fetchall()) if names else []

    def admin(self, command: str) -> list[tuple[object, ...]]:
        """Run an admin console command (``RELOAD``, ``SHOW VERSION``...); its rows."""
        return self._console(command)[1]

    def show(self, what: str) -> list[dict[str, object]]:
        """``SHOW <what>`` as dicts, e.g. ``show("pools")``."""
        names, rows = self._console(f"SHOW {what}")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def reload(self) -> None:
        """Re-read the ini without dropping clients (admin console ``RELOAD``)."""
        self.admin("RELOAD")

    def kill(self) -> None:
        """SIGKILL: every client and server connection drops at once."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        """SIGINT: PgBouncer's immediate shutdown."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail_log(self, lines: int = 20) -> str:
        text = ""
        for path in (self.log_path, self.base / "stderr.log"):  # the log, or what came before it
            with contextlib.suppress(OSError):
                text = text or path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def halt(self) -> None:
        self.stop()


def _system_user(server: str) -> str | None:
    """Who runs PgBouncer as root: the owner of a unix-socket server's directory (the embedded
    server keeps it private to its own user), else ``postgres``, else a
    ``pgbouncer`` user made here."""
    if os.geteuid() != 0:
        return None
    host = server.split()[0].removeprefix("host=")
    if host.startswith("/"):
        with contextlib.suppress(OSError, KeyError):
            owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
            if owner != "root":
                return owner
    return unprivileged_user("postgres", "pgbouncer")
