"""Who a worker is, and whether the process behind a published file still runs.

A pid alone is not an identity: pids are reused, and a file left by an earlier run can carry the
pid of a live process (even our own). On Linux a worker is ``(boot id, pid, start time)``: the
start time is field 22 of ``/proc/<pid>/stat`` (clock ticks since boot) and the boot id is
``/proc/sys/kernel/random/boot_id``, so a file is live only while the process that wrote it runs.
Elsewhere (no ``/proc``) the start time is a random nonce of our own and a peer is live while its
pid exists: a reused pid is then not detected, which docs/scaling.md says.

A *run* is the supervisor that started the workers (``uvicorn --workers``' main process, the
gunicorn arbiter): its pid and start time. A dead worker of our run keeps its counts in the pod's
totals (a replacement must not make counters drop); a dead worker of another run is a leftover.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cache

__all__ = ["WorkerId", "alive", "boot_id", "current", "start_time"]


@cache
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "no-boot-id"


@cache
def _nonce() -> str:
    return secrets.token_hex(8)


def start_time(pid: int) -> str | None:
    """The process's start time as text (Linux: ticks since boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return (_exists(pid) and "?") or None
    # The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _proc() -> bool:
    return os.path.exists("/proc/self/stat")


@dataclass(frozen=True, slots=True)
class WorkerId:
    """One worker process: ``pid`` plus ``start`` (see the module docstring) and its ``run``."""

    pid: int
    start: str
    boot: str
    run: str

    @property
    def key(self) -> str:
        """Unique among every process this machine ran since boot (a file-name part)."""
        return f"{self.pid}-{self.start}"


def current() -> WorkerId:
    """This process (computed on each call: a fork gets its own)."""
    pid, parent = os.getpid(), os.getppid()
    if _proc():
        start = start_time(pid) or _nonce()
        run = f"{parent}-{start_time(parent) or '?'}"
    else:
        start, run = _nonce(), str(parent)
    return WorkerId(pid=pid, start=start, boot=boot_id(), run=run)


def alive(worker: WorkerId) -> bool:
    """True while the process that is ``worker`` runs (not merely one with its pid)."""
    if worker.boot != boot_id():
        return False
    if _proc():
        return start_time(worker.pid) == worker.start
    return _exists(worker.pid)
