"""The README's app snippet is examples/quickstart.py, and it runs as is under uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"


def test_the_readme_shows_the_example_file_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    assert QUICKSTART.read_text() in shown


def test_the_example_serves_health_and_a_query_under_uvicorn(
    make_database: Callable[[], str],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DB_"))}
    env["DATABASE_URL"] = make_database()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.quickstart:app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["status"] == "pass"
        now = httpx.get(f"http://127.0.0.1:{port}/now", timeout=5)
        assert now.status_code == 200 and now.json()["now"][:2] == "20"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "Application startup complete" in out
