"""pa-db as a user runs it: a real subprocess, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import metadata

import pytest

CANARY = "Canary-Cli-Secret-22"


def pa_db(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_commands() -> None:
    result = pa_db("--help")
    assert result.returncode == 0
    assert "settings" in result.stdout


def test_version_is_the_installed_distributions() -> None:
    result = pa_db("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"pa-db {metadata.version('personal-assistant-db')}"


def test_settings_shows_redacted_values() -> None:
    result = pa_db("settings", env={"DATABASE_URL": f"postgres://app:{CANARY}@db/app"})
    assert result.returncode == 0
    assert "postgresql+asyncpg://app:***@db/app" in result.stdout
    assert CANARY not in result.stdout + result.stderr


def test_settings_lists_every_problem_and_exits_2() -> None:
    env = {"DATABASE_URL": f"mysql://app:{CANARY}@db/app", "DB_POOL_SIZE": "0"}
    result = pa_db("settings", env=env)
    assert result.returncode == 2
    assert "DATABASE_URL: scheme 'mysql' is not supported" in result.stderr
    assert "DB_POOL_SIZE: invalid value '0'" in result.stderr
    assert CANARY not in result.stdout + result.stderr


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_probe_exit_codes_follow_http_status(http_server: str) -> None:
    assert pa_db("probe", f"{http_server}/ok").returncode == 0
    failed = pa_db("probe", f"{http_server}/down")
    assert failed.returncode == 1
    assert "HTTP 503" in failed.stderr
    assert pa_db("probe", "ftp://example").returncode == 2
