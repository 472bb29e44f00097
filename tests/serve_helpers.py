"""Shared helper for tests that start a real server process (uvicorn, the demo) on a port."""

from __future__ import annotations

import subprocess
import time

import httpx

__all__ = ["first_response"]


def first_response(proc: subprocess.Popen[str], url: str, *, timeout: float) -> httpx.Response:
    """GET ``url`` until the server in ``proc`` answers; raise if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
