"""Real multi-worker servers for the pod tests: start the quickstart, drive it, scrape it.

``drive`` is a lean asyncio HTTP/1.1 keep-alive client (httpx tops out near 155 req/s here).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serve_helpers import first_response

ROOT = Path(__file__).resolve().parent.parent
TYPES: dict[str, str] = {}  # family name -> # TYPE, from every scrape so far
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$")


def server_env(database_url: str, exchange: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DB_", "WEB_"))}
    env |= {"DATABASE_URL": database_url, "DB_WORKERS_DIR": str(exchange), **extra}
    return env


def start(kind: str, port: int, env: dict[str, str], workers: int = 3) -> subprocess.Popen[str]:
    """The README quickstart under ``uvicorn --workers`` or gunicorn + UvicornWorker."""
    if kind == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "examples.quickstart:app"]
        cmd += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "examples.quickstart:app", "-k"]
        cmd += ["uvicorn.workers.UvicornWorker", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first_response(proc, f"http://127.0.0.1:{port}/health/live", timeout=60)
    return proc


def wait_for_workers(port: int, n: int, timeout: float = 30) -> dict[str, float]:
    """Scrape until ``pa_db_workers`` reports ``n``; the last scrape's samples."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if samples.get("pa_db_workers") == n or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/health/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            TYPES[name] = kind
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def counters(samples: dict[str, float]) -> dict[str, float]:
    """Counter and histogram series (the ones that must never go down), by their # TYPE."""
    monotonic = {n for n, kind in TYPES.items() if kind in ("counter", "histogram")}
    out = {}
    for key, value in samples.items():
        name = key.split("{")[0]
        family = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
        if name in monotonic or family in monotonic:
            out[key] = value
    return out


def selects(samples: dict[str, float]) -> float:
    return sum(
        v
        for k, v in samples.items()
        if k.startswith("db_client_operation_duration_seconds_count")
        and 'db_operation_name="SELECT"' in k
    )


async def _client(
    port: int, path: str, until: float, stop: asyncio.Event, tally: list[int]
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    while time.monotonic() < until and not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < until and not stop.is_set():
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                tally[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
        except (OSError, asyncio.IncompleteReadError, AttributeError):
            tally[2] += 1  # a connection lost mid-request (a killed worker)
        finally:
            writer.close()


async def drive(
    port: int,
    seconds: float,
    *,
    connections: int = 8,
    path: str = "/now",
    stop: asyncio.Event | None = None,
) -> list[int]:
    """[200 responses, other responses, requests lost with their connection]."""
    tally = [0, 0, 0]
    until = time.monotonic() + seconds
    stop = stop or asyncio.Event()
    await asyncio.gather(*(_client(port, path, until, stop, tally) for _ in range(connections)))
    return tally
