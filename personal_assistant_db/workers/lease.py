"""The alert lease: the worker holding an exclusive ``flock`` on ``leader.lock`` evaluates alerts.

Every worker tries ``LOCK_EX | LOCK_NB`` once per monitor tick; the holder keeps its descriptor
open, so the kernel releases the lock the moment its process dies (even by SIGKILL), and the next
worker to tick takes over within one interval. No clock, heartbeat or stale-lock timeout is
involved. A lease taken before a fork (gunicorn ``--preload``) is dropped in the child.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["Lease"]


class Lease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"<Lease {self.path.name} held={self.held}>"

    @property
    def held(self) -> bool:
        return self._fd is not None and self._pid == os.getpid()

    def acquire(self) -> bool:
        """True when this process holds the lease now (taken now, or held already)."""
        if self.held:
            return True
        self._fd = None  # inherited across a fork: not ours
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd, self._pid = fd, os.getpid()
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
