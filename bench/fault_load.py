"""A lean asyncio HTTP/1.1 keep-alive load client (httpx tops out near 155 req/s here).

Each worker holds one TCP connection and sends the next request as soon as the previous answer
arrived. Every request is recorded: start, end, status (or the error kind), whether a 503 carried
``Retry-After``; a connection the server closed is counted (``reconnects``) and reopened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Load", "Sample", "fetch", "poll", "read_response"]

HANG_AFTER = 120.0  # a request unanswered this long is recorded as hung and its socket dropped


@dataclass(frozen=True)
class Sample:
    began: float  # time.monotonic()
    ended: float
    path: str
    status: int  # 0 when there was no HTTP answer
    error: str = ""  # "", "refused", "reset", "closed", "hung"
    retry_after: bool = False
    closed_by_server: bool = False  # the answer said Connection: close / the socket ended

    @property
    def seconds(self) -> float:
        return self.ended - self.began


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str) -> Sample:
        began = time.monotonic()
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode())
            status, headers, _ = await asyncio.wait_for(read_response(self.reader), HANG_AFTER)
        except ConnectionRefusedError:
            await asyncio.sleep(0.01)
            return Sample(began, time.monotonic(), path, 0, "refused")
        except TimeoutError:
            self.close()
            return Sample(began, time.monotonic(), path, 0, "hung")
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            kind = "reset" if isinstance(exc, ConnectionResetError) else "closed"
            return Sample(began, time.monotonic(), path, 0, kind, closed_by_server=True)
        closing = headers.get("connection", "").lower() == "close"
        if closing:
            self.close()
        return Sample(
            began,
            time.monotonic(),
            path,
            status,
            retry_after="retry-after" in headers,
            closed_by_server=closing,
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def fetch(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n".encode())
        status, _, body = await asyncio.wait_for(read_response(reader), 30)
        return status, body
    finally:
        writer.close()


@dataclass
class Load:
    """``clients`` workers requesting ``path_for(worker, n)`` until ``stop()``."""

    host: str
    port: int
    clients: int
    path_for: Callable[[int, int], str]
    samples: list[Sample] = field(default_factory=list)
    _stopping: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*self._tasks)

    async def _worker(self, index: int) -> None:
        conn = _Connection(self.host, self.port)
        n = 0
        while not self._stopping:
            n += 1
            self.samples.append(await conn.request(self.path_for(index, n)))
        conn.close()


async def poll(
    host: str, port: int, path: str, hz: float, until: Callable[[], bool]
) -> list[Sample]:
    """``path`` at ``hz`` on one keep-alive connection until ``until()``."""
    conn = _Connection(host, port)
    out: list[Sample] = []
    while not until():
        out.append(await conn.request(path))
        await asyncio.sleep(1 / hz)
    conn.close()
    return out
