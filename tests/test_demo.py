"""The demo app (examples/demo) on real PostgreSQL: in-process through its own lifespan
(asgi_lifespan + httpx.ASGITransport), and ``python -m examples.demo`` as a real server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from serve_helpers import first_response

from examples.demo.app import create_app
from examples.demo.passwords import hash_password, verify_password
from personal_assistant_db import Database, Telemetry, migrate
from personal_assistant_db.migrate.source import shipped_ids
from personal_assistant_db.testing import ReplicaTopology, free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_url(make_database: Callable[[], str]) -> str:
    url = make_database()
    migrate.apply(url)
    return url


@pytest.fixture
async def client(demo_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(environ={"DATABASE_URL": demo_url, "DB_ENV": "test"})
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            yield c


async def new_user(client: httpx.AsyncClient, email: str = "ada@example.com") -> int:
    r = await client.post("/users", json={"email": email, "password": "correct horse"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_user_is_created_with_a_scrypt_hash_not_the_password(
    client: httpx.AsyncClient, demo_url: str
) -> None:
    r = await client.post(
        "/users",
        json={"email": "ada@example.com", "password": "correct horse", "display_name": " Ada "},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "ada@example.com" and body["display_name"] == "Ada"
    assert body["roles"] == [] and "password" not in r.text
    with psycopg.connect(demo_url) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone() or ("",)
    assert stored.startswith("$scrypt$ln=14,r=8,p=1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert (await client.get(f"/users/{body['id']}")).json()["email"] == "ada@example.com"


async def test_granted_role_decides_the_permission_check_and_both_are_audited(
    client: httpx.AsyncClient,
) -> None:
    uid = await new_user(client)
    check = {"permission": "assistant:advanced"}
    denied = (await client.post(f"/users/{uid}/access-checks", json=check)).json()
    assert denied["allowed"] is False and denied["reason"] == "user has no roles"

    r = await client.post(f"/users/{uid}/roles", json={"role": "premium"})
    assert r.status_code == 201 and r.json()["roles"] == ["premium"]
    again = await client.post(f"/users/{uid}/roles", json={"role": "premium"})
    assert again.status_code == 200  # already held: idempotent, not a second row

    allowed = (await client.post(f"/users/{uid}/access-checks", json=check)).json()
    assert allowed == {
        "user_id": uid,
        "permission": "assistant:advanced",
        "allowed": True,
        "roles_checked": ["premium"],
        "reason": "granted by role premium",
    }
    admin_only = {"permission": "audit:read"}
    no = (await client.post(f"/users/{uid}/access-checks", json=admin_only)).json()
    assert no["allowed"] is False and "audit:read" in no["reason"]

    events = (await client.get(f"/audit-events?user_id={uid}")).json()["events"]
    assert [(e["permission"], e["granted"]) for e in events] == [
        ("audit:read", False),
        ("assistant:advanced", True),
        ("assistant:advanced", False),
    ]
    assert events[1]["roles_checked"] == ["premium"] and events[2]["roles_checked"] == []
    assert (await client.get("/audit-events?limit=1")).json()["events"][0]["id"] == events[0]["id"]


async def test_duplicate_email_is_409_case_insensitively(client: httpx.AsyncClient) -> None:
    await new_user(client, "Grace@Example.com")
    r = await client.post("/users", json={"email": "grace@example.COM", "password": "12345678"})
    assert r.status_code == 409
    assert r.json() == {"error": "email: grace@example.COM is already registered", "field": "email"}


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/users", {"email": "not-an-email", "password": "long enough"}, "email", "ada@example"),
        ("/users", {"email": "a@b.c", "password": "short"}, "password", "8 to 1024"),
        ("/users", [1, 2], "body", "JSON object"),
        ("/users/1/roles", {"role": "Root!"}, "role", "role name"),
        ("/users/1/access-checks", {"permission": "tasks"}, "permission", "resource:action"),
        ("/users/abc/roles", {"role": "user"}, "user_id", "positive whole number"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, path: str, body: object, field: str, words: str
) -> None:
    await new_user(client)
    r = await client.post(path, json=body)
    assert r.status_code == 422
    assert r.json()["field"] == field and words in r.json()["error"]
    assert "short" not in r.text  # a password is never echoed


async def test_health_is_mounted_and_readiness_needs_migrations(
    client: httpx.AsyncClient, make_database: Callable[[], str]
) -> None:
    assert (await client.get("/health/live")).status_code == 200
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "pass"
    unmigrated = create_app(environ={"DATABASE_URL": make_database(), "DB_ENV": "test"})
    async with LifespanManager(unmigrated) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            assert (await c.get("/health/live")).status_code == 200
            not_ready = await c.get("/health/ready")
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "fail"
    assert not_ready.json()["checks"]["database:pendingMigrations"][0]["status"] == "fail"


async def test_every_url_the_demo_prints_is_served(client: httpx.AsyncClient) -> None:
    from examples.demo.__main__ import urls

    lines = urls("0.0.0.0", 8000)  # noqa: S104 - display only
    printed = [u for line in lines for u in line.split() if u.startswith("http")]
    assert "http://127.0.0.1:8000/health/ready" in printed  # 0.0.0.0 is shown as 127.0.0.1
    for url in printed:
        r = await client.get(url.removeprefix("http://127.0.0.1:8000"))
        assert r.status_code == 200, (url, r.status_code)


async def test_root_page_links_to_this_services_traces_in_jaeger(demo_url: str) -> None:
    env = {
        "DATABASE_URL": demo_url,
        "DB_ENV": "test",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
        "OTEL_SERVICE_NAME": "pa-demo",
        "JAEGER_UI_URL": "http://127.0.0.1:16686/",
    }
    pages = {}
    for name, environ in {"exporting": env, "off": {"DATABASE_URL": demo_url}}.items():
        db = Database.from_env({"DATABASE_URL": demo_url})
        telemetry = Telemetry(db, tracing=False)  # no exporter: this test only reads the page
        app = create_app(db, environ=environ, telemetry=telemetry)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            pages[name] = (await c.get("/")).text
        telemetry.close()
    link = "http://127.0.0.1:16686/search?service=pa-demo&amp;limit=20&amp;lookback=15m"
    assert f'<a href="{link}">' in pages["exporting"]
    assert "/search?" not in pages["off"] and "OTEL_EXPORTER_OTLP_ENDPOINT" in pages["off"]


async def test_unknown_role_lists_the_known_ones_and_unknown_user_is_404(
    client: httpx.AsyncClient,
) -> None:
    uid = await new_user(client)
    r = await client.post(f"/users/{uid}/roles", json={"role": "wizard"})
    assert r.status_code == 422
    assert "no role named 'wizard' (known: user, premium, administrator)" in r.json()["error"]
    assert (await client.post("/users/999999/roles", json={"role": "user"})).status_code == 404
    missing = await client.post("/users/999999/access-checks", json={"permission": "tasks:read"})
    assert missing.status_code == 404
    assert (await client.get("/audit-events")).json()["events"] == []  # nothing was audited


async def test_queries_show_up_in_stats_and_metrics(client: httpx.AsyncClient) -> None:
    uid = await new_user(client)
    for _ in range(5):
        await client.post(f"/users/{uid}/access-checks", json={"permission": "tasks:read"})
    stats = (await client.get("/stats")).json()
    assert stats["operations"]["INSERT"]["count"] >= 6
    assert stats["operations"]["SELECT"]["p95_ms"] > 0
    assert stats["pool"]["checkouts"] >= 6
    metrics = await client.get("/health/metrics")
    assert "db_client_operation_duration" in metrics.text
    roles = (await client.get("/roles")).json()["roles"]
    assert [r["name"] for r in roles] == ["user", "premium", "administrator"]
    assert "audit:read" in roles[2]["permissions"] and "audit:read" not in roles[1]["permissions"]


async def test_each_request_is_a_server_span_with_its_queries_as_children(
    demo_url: str,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = Database.from_env({"DATABASE_URL": demo_url, "DB_ENV": "test"})
    app = create_app(db, telemetry=Telemetry(db, tracer_provider=provider))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            uid = await new_user(c)
            exporter.clear()
            await c.post(f"/users/{uid}/access-checks", json={"permission": "tasks:read"})
            await c.get("/health/ready")
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "POST /users/{id}/access-checks"
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    queries = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert {s.name for s in queries} >= {"SELECT users", "INSERT access_audit_logs"}
    assert server.context is not None
    for q in queries:  # every query of the request, and nothing from /health
        assert q.parent is not None and q.parent.span_id == server.context.span_id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=8, max_size=40))
def test_password_hash_round_trips(password: str) -> None:
    stored = hash_password(password, log2_n=4)
    assert stored.startswith("$scrypt$ln=4,") and password not in stored
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)


# Guards against a hang, not a latency budget: the demo starts (imports, the migrations, uvicorn)
# in about 3 s alone, but several times that on a loaded 2-core machine, where 30 s was missed.
STARTUP_GUARD_S = 120


def test_python_m_examples_demo_migrates_and_serves(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_database()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(DATABASE_URL=url, DB_ENV="test")
    # Its output goes to a file, not a pipe nobody reads while it serves: an access log line
    # per request would fill a 64 KiB pipe and block the server.
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = first_response(proc, f"http://127.0.0.1:{port}/", timeout=STARTUP_GUARD_S)
        assert page.status_code == 200 and "personal-assistant-db demo" in page.text
        roles = httpx.get(f"http://127.0.0.1:{port}/roles", timeout=5).json()["roles"]
        assert len(roles) == 3  # the seed migration ran
        live = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        assert live.status_code == 200 and live.json()["status"] == "pass"
        load = subprocess.run(
            [
                *(sys.executable, "-m", "examples.demo.load"),
                *("--url", f"http://127.0.0.1:{port}", "--seconds", "1"),
                *("--concurrency", "2", "--users", "2"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert load.returncode == 0, load.stderr
        summary, stats = load.stdout.split("\n", 1)
        assert "requests in" in summary and "'200'" in summary
        assert json.loads(stats)["operations"]["SELECT"]["count"] > 10
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.seek(0)
        out = log.read()
        log.close()
    assert f"migrations: {len(shipped_ids())} applied" in out  # every shipped one
    assert f"http://127.0.0.1:{port}/stats" in out
    assert "Jaeger" not in out  # no OTLP endpoint, no traces URL


def test_load_script_says_when_the_demo_is_not_there() -> None:
    port = free_port()  # nothing listens on it
    r = subprocess.run(
        [sys.executable, "-m", "examples.demo.load", "--url", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert f"load: cannot reach http://127.0.0.1:{port}" in r.stderr
    assert "python -m examples.demo" in r.stderr


def test_unreachable_database_is_exit_2_without_the_password() -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://app:canary-pw@127.0.0.1:{free_port()}/x"}
    r = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("demo: cannot connect to") and "Traceback" not in r.stderr
    assert "canary-pw" not in r.stdout + r.stderr


def test_bad_port_flag_is_a_clear_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--port", "99999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "--port: expected a TCP port from 1 to 65535, got '99999'" in r.stderr


def test_a_busy_port_is_reported_before_the_banner_with_how_to_choose_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "examples.demo", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": "postgresql://app@127.0.0.1:1/never-used"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2
    assert f"demo: cannot listen on 127.0.0.1:{port}" in r.stderr
    assert f"--port {port + 1}" in r.stderr
    assert "open:" not in r.stdout and "migrations:" not in r.stdout  # no banner, no migrate


async def test_a_client_reads_its_own_new_user_from_a_lagging_replica_setup(
    replica_topology: ReplicaTopology,
) -> None:
    """The demo with a replica whose replay is paused: the client that created the user reads it
    (its cookie sends the read to the primary); a client without the cookie reads the replica."""
    topo = replica_topology
    standby = topo.standbys[0]
    migrate.apply(topo.primary.url)
    topo.wait_caught_up(standby)
    environ = {
        "DATABASE_URL": topo.primary.url,
        "DB_ENV": "test",
        "DATABASE_REPLICA_URLS": standby.url,
        "DB_REPLICA_MAX_LAG_MS": "600000",  # only read-your-writes keeps reads off the replica
        "DB_REPLICA_CHECK_INTERVAL": "0.1",
    }
    app = create_app(environ=environ)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://demo") as writer,
            httpx.AsyncClient(transport=transport, base_url="http://demo") as stranger,
        ):
            topo.pause_replay(standby)
            try:
                uid = await new_user(writer, "replica-reader@example.com")
                assert (await writer.get(f"/users/{uid}")).status_code == 200
                assert (await stranger.get(f"/users/{uid}")).status_code == 404
            finally:
                topo.resume_replay(standby)
            topo.wait_caught_up(standby)
            for _ in range(200):  # once the monitor has seen the replay, the replica has it
                if (await stranger.get(f"/users/{uid}")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await stranger.get(f"/users/{uid}")).status_code == 200
