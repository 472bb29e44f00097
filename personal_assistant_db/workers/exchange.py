"""The exchange directory: one file per worker, written atomically, read by every worker.

Layout (``DB_WORKERS_DIR``, default ``<system temp dir>/pa-db-<uid>``)::

    <dir>/                    0700, owned by this user (checked: another owner is an error)
      <app key>/              0700: one per app (application name, database, cwd, command line)
        w-<pid>-<start>.json  0600: a worker's last publication (replaced atomically by rename)
        archive.json          0600: counters of workers of this run that died (never go down)
        leader.lock           the alert lease (flock; lease.py)
        alerts.json, history.json  the pod's alert state and dashboard history (leader writes)

A file is read only when it sits in our app's folder, is a regular file owned by our uid with
no group/other permission bits, is at most ``MAX_FILE_BYTES`` long, and carries our app key and
uid inside. A worker file is used only while the process named by its ``pid-start`` runs
(identity.py): a file left by an earlier run, even one whose pid is ours now, is ignored.
Files of dead workers of our run are folded into ``archive.json`` (their counters stay in the
totals, as prometheus_client's ``mark_process_dead`` keeps them); those of another run are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, SettingProblem
from .identity import WorkerId, alive

__all__ = ["FORMAT", "MAX_FILE_BYTES", "Exchange", "Published", "app_key", "default_dir"]

FORMAT = 1
MAX_FILE_BYTES = 1 << 20  # 1 MiB: a worker's file is ~10-40 kB; a bigger one is not ours to read
_WORKER_FILE = re.compile(r"^w-(\d+)-([0-9a-f?]+)\.json$")
ARCHIVE = "archive.json"
Fold = Callable[[Any, Any], Any]
_KEEP_IDS = 64  # compacted worker keys remembered in the archive (readers dedupe by them)


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"pa-db-{os.getuid()}"


def app_key(application_name: str, database: str, cwd: str, argv: list[str]) -> str:
    """A folder name for one app: readable prefix + hash of what tells apps apart."""
    digest = hashlib.sha256("\0".join([application_name, database, cwd, *argv]).encode())
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", application_name)[:40] or "app"
    return f"{prefix}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Published:
    """One worker's publication, as read from its file."""

    worker: WorkerId
    data: dict[str, Any]
    live: bool


def _problem(reason: str) -> ConfigurationError:
    return ConfigurationError(
        [SettingProblem("DB_WORKERS_DIR", reason, "a directory this user can write, e.g. /tmp")]
    )


def _safe_dir(path: Path) -> None:
    """Create ``path`` 0700 (parents as needed) or check an existing one is ours and private."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise _problem(f"cannot create {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _problem(f"{str(path)!r} is not a directory")
    if info.st_uid != os.getuid():
        raise _problem(f"{str(path)!r} belongs to uid {info.st_uid}, not to this user")
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            raise _problem(f"cannot make {str(path)!r} private (0700): {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise _problem(f"{str(path)!r} is not writable")


class Exchange:
    """The app's folder in the exchange directory; ``open()`` checks it (startup errors)."""

    def __init__(self, base: Path, key: str, me: WorkerId) -> None:
        self.base = base
        self.key = key
        self.folder = base / key
        self.me = me
        self.uid = os.getuid()
        self._archive_ids: set[str] = set()

    @classmethod
    def for_app(
        cls, base: Path | None, application_name: str, database: str, me: WorkerId
    ) -> Exchange:
        key = app_key(application_name, database, os.getcwd(), list(sys.argv))
        return cls(base or default_dir(), key, me)

    def __repr__(self) -> str:
        return f"<Exchange {str(self.folder)!r} worker={self.me.key}>"

    def open(self) -> None:
        """Create/check the folders and prove a write works (ConfigurationError if not)."""
        _safe_dir(self.base)
        _safe_dir(self.folder)
        probe = self.folder / f".probe-{self.me.key}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise _problem(f"cannot write in {str(self.folder)!r}: {exc.strerror}") from None

    @property
    def my_file(self) -> Path:
        return self.folder / f"w-{self.me.key}.json"

    # -- writing ---------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        m = self.me
        return {
            "format": FORMAT,
            "app": self.key,
            "uid": self.uid,
            "worker": {"pid": m.pid, "start": m.start, "boot": m.boot, "run": m.run},
        }

    def write(self, name: str, data: dict[str, Any]) -> int:
        """Replace ``name`` atomically with ``data`` (+ header), 0600. Returns the bytes written."""
        body = json.dumps({**self.header(), **data}, separators=(",", ":")).encode()
        if len(body) > MAX_FILE_BYTES:
            raise ValueError(f"{name}: {len(body)} bytes is over MAX_FILE_BYTES={MAX_FILE_BYTES}")
        tmp = self.folder / f".tmp-{self.me.key}-{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp, self.folder / name)
        return len(body)

    def publish(self, data: dict[str, Any]) -> int:
        return self.write(self.my_file.name, data)

    # -- reading ---------------------------------------------------------------------------
    def read(self, name: str) -> dict[str, Any] | None:
        """The file's JSON if it passes every check in the module docstring, else None."""
        try:
            fd = os.open(self.folder / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if (
                not stat.S_ISREG(info.st_mode)
                or info.st_uid != self.uid
                or info.st_mode & 0o077
                or info.st_size > MAX_FILE_BYTES
            ):
                return None
            raw = f.read(MAX_FILE_BYTES + 1)
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if (
            data.get("format") != FORMAT
            or data.get("app") != self.key
            or data.get("uid") != self.uid
        ):
            return None
        return data

    def workers(self) -> Iterator[tuple[WorkerId, str]]:
        """(worker id from the file name, file name) for every worker file in our folder."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            match = _WORKER_FILE.match(name)
            if match:
                pid, start = int(match.group(1)), match.group(2)
                yield WorkerId(pid, start, self.me.boot, ""), name

    def collect(self) -> tuple[list[Published], dict[str, Any] | None]:
        """Every readable worker file (live and not yet compacted), then the archive.

        Worker files are read before the archive: compaction writes the archive before it
        removes a file, so a file missing here is already in the archive read after it, and a
        file read here that the archive names is skipped (never counted twice)."""
        found: list[Published] = []
        for wid, name in self.workers():
            if wid.key == self.me.key:
                continue  # our own figures come from memory, fresher than our file
            data = self.read(name)
            if data is None:
                continue
            w = data.get("worker") or {}
            full = WorkerId(wid.pid, wid.start, str(w.get("boot")), str(w.get("run")))
            if full.key != wid.key:
                continue
            found.append(Published(full, data, alive(full)))
        archive = self.read(ARCHIVE)
        if archive is not None and archive.get("run") != self.me.run:
            archive = None
        if archive is not None:
            ids = set(archive.get("ids", ()))
            found = [p for p in found if p.worker.key not in ids]
        # A dead worker of another run is a leftover from an earlier run: never counted.
        found = [p for p in found if p.live or p.worker.run == self.me.run]
        return found, archive

    # -- cleaning --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, name: str, *, wait: bool) -> Iterator[bool]:
        fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def compact(self, fold: Fold, *, extra: Sequence[Published] = (), wait: bool = False) -> int:
        """Fold dead workers' files of our run into the archive, remove other leftovers.

        ``fold(archive_metrics, published_metrics) -> archive_metrics`` sums counters; ``extra``
        are publications to fold although their process runs (our own, at stop). Returns the
        number of files folded. Skips the round when another worker compacts right now."""
        with self._locked("archive.lock", wait=wait) as got:
            if not got:
                return 0
            archive = self.read(ARCHIVE)
            if archive is None or archive.get("run") != self.me.run:
                archive = {"run": self.me.run, "ids": [], "metrics": []}
            ids: list[str] = list(archive.get("ids", ()))
            folded: list[str] = []
            for wid, name in self.workers():
                if wid.key == self.me.key and not extra:
                    continue
                data = self.read(name)
                w = (data or {}).get("worker") or {}
                full = WorkerId(wid.pid, wid.start, str(w.get("boot")), str(w.get("run")))
                mine = any(e.worker.key == wid.key for e in extra)
                if data is not None and not mine and alive(full):
                    continue
                if data is not None and full.run == self.me.run and wid.key not in ids:
                    archive["metrics"] = fold(archive["metrics"], data.get("metrics", []))
                    ids.append(wid.key)
                folded.append(name)
            if not folded:
                return 0
            archive["ids"] = ids[-_KEEP_IDS:]
            self.write(ARCHIVE, archive)
            for name in folded:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder / name)
            self._sweep_tmp()
            return len(folded)

    def _sweep_tmp(self) -> None:
        """Remove temp files of processes that are gone (a crash between write and rename)."""
        for name in os.listdir(self.folder):
            if not name.startswith((".tmp-", ".probe-")):
                continue
            pid = name.split("-")[1]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder / name)
