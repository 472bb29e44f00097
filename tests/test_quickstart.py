"""The README's app snippet is examples/quickstart.py, and it runs as is under uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from serve_helpers import first_response

from personal_assistant_db.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"


def test_the_readme_shows_the_example_file_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    assert QUICKSTART.read_text() in shown


def test_the_example_serves_health_and_a_query_under_uvicorn(
    make_database: Callable[[], str],
) -> None:
    port = free_port()
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
        ready = first_response(proc, f"http://127.0.0.1:{port}/health/ready", timeout=60)
        assert ready.status_code == 200 and ready.json()["status"] == "pass"
        now = httpx.get(f"http://127.0.0.1:{port}/now", timeout=5)
        assert now.status_code == 200 and now.json()["now"][:2] == "20"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "Application startup complete" in out
