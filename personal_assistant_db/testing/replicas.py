"""A real replication topology for tests: a primary and streaming standbys on 127.0.0.1.

    with ReplicaTopology(standbys=2) as topo:
        topo.primary.url, [s.url for s in topo.standbys]
        topo.pause_replay(topo.standbys[0]); ...; topo.resume_replay(topo.standbys[0])
        topo.primary.stop("immediate"); topo.promote(topo.standbys[0])

Standbys are cloned with ``pg_basebackup -R -X stream`` (``-R`` writes ``primary_conninfo`` and
``standby.signal``), so they follow the primary over streaming replication. The binaries are
``bindir``'s, by default the ones ``ThrowawayServer`` picks (Debian's under /usr/lib/postgresql,
else the embedded default's), run as the ``postgres``/``embedded_postgres`` system user as root.
Nothing touches the system server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from .postgres import ThrowawayServer

__all__ = ["ReplicaTopology", "StandbyServer"]


def _sql(url: str, query: str, attempts: int = 5) -> object:
    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                cursor = conn.execute(query.encode())
                row = cursor.fetchone() if cursor.description else None
                return row[0] if row else None
        except psycopg.errors.SerializationFailure:
            # A standby cancels a query that conflicts with replay ("conflict with recovery").
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
    return None  # pragma: no cover - the loop returns or raises


class StandbyServer(ThrowawayServer):
    """A ThrowawayServer whose data directory is a ``pg_basebackup -R`` clone of ``primary``."""

    def __init__(self, primary: ThrowawayServer, base_dir: str | Path) -> None:
        super().__init__(base_dir, bindir=primary.bindir)
        self.primary = primary

    def __repr__(self) -> str:
        return f"<StandbyServer 127.0.0.1:{self.port} of :{self.primary.port}>"

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.base, self.user)
            os.chmod(self.base, 0o755)  # noqa: S103 - the server user must enter its directory
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.datadir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )


class ReplicaTopology:
    """A primary and ``standbys`` streaming standbys, each a private server on 127.0.0.1."""

    def __init__(
        self,
        standbys: int = 1,
        base_dir: str | Path | None = None,
        *,
        bindir: str | Path | None = None,
        synchronous: bool = False,
    ) -> None:
        """``bindir``: the PostgreSQL binaries (default: ThrowawayServer's choice, Debian's when
        installed, else the embedded default's ``embedded_bindir()``); every node uses the same.
        ``synchronous``: once the standbys stream, the primary waits for one of them to flush
        each commit (``synchronous_standby_names = '*'``), so no acknowledged commit is lost
        when the primary dies and a standby is promoted. Asynchronous (the default) can lose the
        last acknowledged commits."""
        if standbys < 0:
            raise ValueError(f"standbys must be >= 0, got {standbys!r}")
        self.synchronous = synchronous
        self._owned_dir = base_dir is None
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="pa-db-topo-"))
        os.chmod(self.base, 0o755)  # noqa: S103 - server users traverse to their directories
        self.primary = ThrowawayServer(self.base / "primary", bindir=bindir)
        self.standbys = [
            StandbyServer(self.primary, self.base / f"standby{i}") for i in range(standbys)
        ]

    def __repr__(self) -> str:
        ports = ",".join(str(s.port) for s in self.standbys)
        return f"<ReplicaTopology primary=:{self.primary.port} standbys=:{ports}>"

    @property
    def nodes(self) -> list[ThrowawayServer]:
        return [self.primary, *self.standbys]

    def start(self) -> None:
        """Start the primary, clone and start every standby, wait until all stream."""
        self.primary.start()
        for standby in self.standbys:
            standby.start()
        self.wait_streaming()
        if self.synchronous and self.standbys:
            _sql(self.primary.url, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            _sql(self.primary.url, "SELECT pg_reload_conf()")
            self._wait_sync()

    def cleanup(self) -> None:
        for node in reversed(self.nodes):
            node.cleanup()
        if self._owned_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ReplicaTopology:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- observing ---------------------------------------------------------------------------
    @staticmethod
    def query(node: ThrowawayServer, sql: str) -> object:
        """The first column of the first row of ``sql`` on ``node`` (autocommit)."""
        return _sql(node.url, sql)

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Wait until the primary has a WAL sender per running standby."""
        want = sum(1 for s in self.standbys if s.running)
        deadline = time.monotonic() + timeout
        while True:
            count = _sql(self.primary.url, "SELECT count(*) FROM pg_stat_replication")
            if count == want:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} of {want} standbys streaming after {timeout:g}s")
            time.sleep(0.05)

    def _wait_sync(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        sql = "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')"
        while _sql(self.primary.url, sql) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no synchronous standby after {timeout:g}s")
            time.sleep(0.05)

    def wait_caught_up(self, standby: ThrowawayServer, timeout: float = 30.0) -> None:
        """Wait until ``standby`` has replayed everything the primary has written so far."""
        target = _sql(self.primary.url, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while True:
            done = _sql(standby.url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done is True:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{standby!r} did not reach {target} in {timeout:g}s")
            time.sleep(0.02)

    # -- faults --------------------------------------------------------------------------------
    def pause_replay(self, standby: ThrowawayServer) -> None:
        """``pg_wal_replay_pause()``: the standby keeps receiving WAL but applies none of it."""
        _sql(standby.url, "SELECT pg_wal_replay_pause()")

    def resume_replay(self, standby: ThrowawayServer) -> None:
        _sql(standby.url, "SELECT pg_wal_replay_resume()")

    def promote(self, standby: ThrowawayServer, timeout: float = 30.0) -> float:
        """Promote ``standby`` (``pg_promote(wait => true)``); returns the seconds it took."""
        began = time.perf_counter()
        ok = _sql(standby.url, f"SELECT pg_promote(true, {max(1, int(timeout))})")
        if ok is not True:
            raise TimeoutError(f"{standby!r} was not promoted within {timeout:g}s")
        return time.perf_counter() - began

    def stop(self, node: ThrowawayServer, mode: str = "immediate") -> None:
        """Stop ``node`` (``immediate`` = a crash: no shutdown checkpoint)."""
        with contextlib.suppress(Exception):
            node.stop(mode)
