"""Behind a real PgBouncer (Debian's 1.18): DB_POOLER modes under load, restarts, mismatches.

The pooler runs as an unprivileged user (testing.PgBouncer) in front of the test server, with
``default_pool_size=4``: 64 clients share 4 server connections. Skipped, with the reason, only
where pgbouncer is neither installed nor installable (not root, no apt-get).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import Database, PoolerMismatch, Severity, Telemetry
from personal_assistant_db.doctor.pool_advice import HEADROOM, PoolInputs, pooler_advice
from personal_assistant_db.engines import connect_args
from personal_assistant_db.testing import PgBouncer, PgBouncerUnavailable
from personal_assistant_db.testing.pgbouncer import INI_TEMPLATE
from tests.pooler_helpers import OPS, run_load

TOKEN = "t0ken-for-pooler-details-1234"


def _bouncer(server_url: str, mode: str) -> Iterator[PgBouncer]:
    try:
        bouncer = PgBouncer(server_url, pool_mode=mode, pool_size=4)
    except PgBouncerUnavailable as exc:
        pytest.skip(f"no PgBouncer here: {exc}")
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.cleanup()


@pytest.fixture
def transaction_bouncer(server_url: str) -> Iterator[PgBouncer]:
    yield from _bouncer(server_url, "transaction")


@pytest.fixture
def session_bouncer(server_url: str) -> Iterator[PgBouncer]:
    yield from _bouncer(server_url, "session")


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "DB_ENV": "test", "DB_HEALTH_TOKEN": TOKEN, **extra}


async def test_transaction_mode_64_clients_on_4_server_connections(
    transaction_bouncer: PgBouncer, database_url: str
) -> None:
    """64 clients through transaction pooling with 4 server connections, for several seconds:
    writes, reads, transactions, driver statements (in and out of a transaction), health probes,
    telemetry and the fast path. No protocol error, no wrong result: each client reads back its
    own writes."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    url = transaction_bouncer.url_for(database_url)
    # The app's own pool has room for every client and the probes (a full pool fails /ready);
    # the probes' deadlines are generous: this test is about correctness, not latency, on a
    # machine that may be loaded (a probe queues behind 64 clients for 4 server connections).
    env = _env(
        url,
        DB_POOLER="pgbouncer-transaction",
        DB_POOL_SIZE="40",
        DB_MAX_OVERFLOW="40",
        DB_HEALTH_TIMEOUT="5",
        DB_HEALTH_CHECKOUT_TIMEOUT="2",
    )
    db = Database.from_env(env)
    telemetry = Telemetry(db, tracer_provider=provider, tracing=True)
    health = db.health_app(telemetry=telemetry)
    await db.start()
    try:
        report = await run_load(db, clients=64, seconds=6, health=health)
        assert [e.error for e in report.errors][:5] == []
        assert report.wrong == []
        assert report.probes.get(200, 0) > 0
        assert {o.op for o in report.outcomes} == set(OPS)  # every path ran
        assert len(report.outcomes) > 200
        name = url.rsplit("/", 1)[1]
        servers = [s for s in transaction_bouncer.show("servers") if s["database"] == name]
        clients = [c for c in transaction_bouncer.show("clients") if c["database"] == name]
        assert 1 <= len(servers) <= 4  # at most 4 server connections ...
        assert len(clients) >= 16  # ... shared by the app pool's many client connections
        assert spans.get_finished_spans()  # telemetry saw the queries
        assert telemetry.latency_snapshot()
        async with db.connect() as conn:  # statement_timeout arrived as SET LOCAL on BEGIN
            timeout = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
            app_name = (await conn.exec_driver_sql("SHOW application_name")).scalar()
        assert (timeout, app_name) == ("10s", db.settings.application_name)
        host = Starlette(routes=[Mount("/health", app=health)])
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/health/ready", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ready.status_code == 200
        [database] = [c for c in ready.json()["checks"]["database:responseTime"]]
        assert database["details"]["pooler"] == "pgbouncer-transaction"
    finally:
        await db.stop()
        telemetry.close()


async def test_pgbouncer_reload_then_kill_and_restart_under_load(
    transaction_bouncer: PgBouncer, database_url: str
) -> None:
    """RELOAD costs nothing; a killed PgBouncer costs errors only while it is down (plus the
    first use of each dead connection just after); the app recovers on its own."""
    url = transaction_bouncer.url_for(database_url)
    db = Database.from_env(
        _env(url, DB_POOLER="pgbouncer-transaction", DB_POOL_SIZE="16", DB_MAX_OVERFLOW="16")
    )
    await db.start()
    marks: dict[str, float] = {}

    async def operate() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(transaction_bouncer.reload)
        marks["reloaded"] = time.monotonic()
        await asyncio.sleep(1.5)
        marks["killed"] = time.monotonic()
        await asyncio.to_thread(transaction_bouncer.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(transaction_bouncer.start)
        marks["restarted"] = time.monotonic()

    try:
        report, _ = await asyncio.gather(run_load(db, clients=32, seconds=11), operate())
    finally:
        await db.stop()
    grace = 3.0  # each pooled connection fails once on first use after the restart
    before = [e for e in report.errors if e.at < marks["killed"]]
    after = [e for e in report.errors if e.at > marks["restarted"] + grace]
    assert before == [] and after == []
    assert report.wrong == []
    assert not [e for e in report.errors if "prepared statement" in (e.error or "")]
    assert report.ok_after(marks["reloaded"]) > report.ok_after(marks["killed"]) > 0
    assert report.ok_after(marks["restarted"] + grace) > 32  # recovered without help


async def test_session_mode_keeps_caches_and_sets_the_timeout(
    session_bouncer: PgBouncer, database_url: str
) -> None:
    url = session_bouncer.url_for(database_url)
    db = Database.from_env(_env(url, DB_POOLER="pgbouncer-session", DB_POOL_SIZE="4"))
    await db.start()
    try:
        report = await run_load(db, clients=4, seconds=2)
        async with db.connect() as conn:
            timeout = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
    finally:
        await db.stop()
    assert report.errors == [] and report.wrong == []
    assert timeout == "10s"


async def test_pooler_none_behind_pgbouncer_names_the_setting(
    transaction_bouncer: PgBouncer, database_url: str
) -> None:
    """DB_POOLER=none in front of PgBouncer: the startup parameter is refused at start, and
    (without one) the first prepared statement that meets another server connection becomes a
    PoolerMismatch naming DB_POOLER, logged once."""
    url = transaction_bouncer.url_for(database_url)
    db = Database.from_env(_env(url))
    with pytest.raises(PoolerMismatch, match="DB_POOLER: is none, but the server rejected"):
        await db.start()

    db = Database.from_env(_env(url, DB_STATEMENT_TIMEOUT_MS="0", DB_POOL_SIZE="16"))
    await db.start()
    errors: list[BaseException] = []

    async def client(i: int) -> None:
        for _ in range(30):
            try:
                async with db.connect() as conn:
                    await conn.execute(text("SELECT CAST(:x AS int)"), {"x": i})
            except Exception as exc:
                errors.append(exc)

    try:
        with structlog.testing.capture_logs() as logs:
            await asyncio.gather(*(client(i) for i in range(16)))
    finally:
        await db.stop()
    assert errors, "16 clients on 4 server connections should have met a foreign statement"
    assert all(isinstance(e, PoolerMismatch) for e in errors), {type(e) for e in errors}
    assert "DB_POOLER=pgbouncer-transaction" in str(errors[0])
    detected = [e for e in logs if e["event"] == "db.pooler.detected"]
    assert len(detected) == 1 and detected[0]["setting"] == "DB_POOLER"


async def test_transaction_setting_on_a_plain_server_still_works(database_url: str) -> None:
    """DB_POOLER=pgbouncer-transaction against PostgreSQL itself: correct, only slower."""
    db = Database.from_env(_env(database_url, DB_POOLER="pgbouncer-transaction"))
    await db.start()
    try:
        report = await run_load(db, clients=8, seconds=1.5)
        async with db.connect() as conn:
            inside = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar()
    finally:
        await db.stop()
    assert report.errors == [] and report.wrong == []
    assert inside == "10s"


@pytest.mark.parametrize("value", ["pgbouncer", "transaction", "PgPool"])
def test_unknown_pooler_is_a_settings_error(value: str) -> None:
    from personal_assistant_db import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        Database.from_env({"DATABASE_URL": "postgresql://u@h/db", "DB_POOLER": value})
    [problem] = info.value.problems
    assert problem.variable == "DB_POOLER"
    assert "pgbouncer-transaction" in problem.expected


def test_connect_args_per_mode() -> None:
    """What each mode sends: no statement_timeout startup parameter behind PgBouncer."""
    from personal_assistant_db import Settings

    def args(mode: str) -> dict[str, Any]:
        env = {"DATABASE_URL": "postgresql://u@h/db", "DB_POOLER": mode}
        return connect_args(Settings.from_env(env))

    assert "statement_timeout" in args("none")["server_settings"]
    for mode in ("pgbouncer-session", "pgbouncer-transaction"):
        assert "statement_timeout" not in args(mode)["server_settings"]
        assert args(mode)["server_settings"]["application_name"] == "personal-assistant-db"
    assert args("pgbouncer-transaction")["statement_cache_size"] == 0
    assert args("pgbouncer-transaction")["prepared_statement_cache_size"] == 0
    assert "statement_cache_size" not in args("pgbouncer-session")


def _migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "migrate", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_refuses_the_transaction_pooler_and_takes_the_migrate_url(
    transaction_bouncer: PgBouncer, make_database: Callable[[], str]
) -> None:
    """``pa-db migrate`` through transaction pooling says what to do and changes nothing; with
    DATABASE_MIGRATE_URL it migrates directly, and /health/ready checks migrations through the
    pooler."""
    direct = make_database()
    pooled = transaction_bouncer.url_for(direct)
    env = {"DATABASE_URL": pooled, "DB_POOLER": "pgbouncer-transaction"}
    refused = _migrate(env, "apply")
    assert refused.returncode == 2
    assert "DATABASE_MIGRATE_URL" in refused.stderr and "transaction mode" in refused.stderr
    db = Database.from_env(_env(pooled, DB_POOLER="pgbouncer-transaction"))
    health = db.health_app(require_migrations=True)
    host = Starlette(routes=[Mount("/health", app=health)])
    await db.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=host), base_url="http://t"
        ) as http:
            before = await http.get("/health/ready")
            done = await asyncio.to_thread(
                _migrate, {**env, "DATABASE_MIGRATE_URL": direct}, "apply"
            )
            assert done.returncode == 0, done.stderr
            await asyncio.sleep(db.settings.health_fail_ttl + 0.1)  # the failed result's cache
            after = await http.get("/health/ready", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        await db.stop()
    assert before.status_code == 503  # nothing was applied through the pooler
    assert after.status_code == 200, after.text
    checks = after.json()["checks"]
    assert checks["database:pendingMigrations"][0]["observedValue"] == 0
    assert checks["database:responseTime"][0]["details"]["pooler"] == "pgbouncer-transaction"


@given(
    capacity=st.integers(1, 60),
    workers=st.integers(1, 64),
    max_client_conn=st.integers(1, 5000),
    pooler_pool=st.none() | st.integers(1, 500),
    mode=st.sampled_from(["none", "pgbouncer-session", "pgbouncer-transaction"]),
)
def test_doctor_warns_when_workers_exceed_the_poolers_limits(
    capacity: int, workers: int, max_client_conn: int, pooler_pool: int | None, mode: str
) -> None:
    inputs = PoolInputs(
        100, 3, 0, workers, 4, True, capacity, 0, None, mode, max_client_conn, pooler_pool
    )
    finding = pooler_advice(inputs)
    if mode == "none":
        assert finding is None
        return
    assert finding is not None
    over_clients = capacity * workers > max_client_conn
    over_server = pooler_pool is not None and pooler_pool > 100 - 3 - HEADROOM
    assert (finding.severity is Severity.WARNING) is (over_clients or over_server)
    assert ("max_client_conn" in finding.summary) is (over_clients or not over_server)
    if over_clients:
        assert f"max_client_conn >= {capacity * workers}" in finding.action


def test_doctor_through_the_pooler_reports_its_limits(
    transaction_bouncer: PgBouncer, database_url: str
) -> None:
    """``pa-db doctor`` runs through transaction pooling and warns: 8 workers x (10 + 10)."""
    env = {
        "DATABASE_URL": transaction_bouncer.url_for(database_url),
        "DB_POOLER": "pgbouncer-transaction",
        "DB_POOL_SIZE": "10",
        "DB_MAX_OVERFLOW": "10",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "personal_assistant_db.cli", "doctor", "--json", "--workers", "8"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    findings = json.loads(result.stdout)["findings"]
    [pooler] = [f for f in findings if f["analysis"] == "pooler_sizing"]
    assert pooler["severity"] == "warning"
    assert "160 client connections exceed PgBouncer's max_client_conn 100" in pooler["summary"]


def test_the_documented_ini_is_the_one_the_tests_run() -> None:
    """docs/scaling.md shows the harness's own pgbouncer.ini (with example port and paths)."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scaling.md").read_text()
    block = doc.split("```ini\n", 1)[1].split("```", 1)[0]
    rendered = INI_TEMPLATE.format(
        server="host=127.0.0.1 port=5432",
        port=6432,
        dir="/run/pgbouncer",
        pool_mode="transaction",
        pool_size=4,
        max_client_conn=400,
    )
    assert block == rendered


@given(password=st.text(st.characters(categories=["L", "N"]), min_size=8, max_size=20))
def test_the_migrate_url_never_shows_its_password(password: str) -> None:
    from personal_assistant_db import ConfigurationError, Settings

    password = f"Zq{password}Xj"  # a canary no message text contains by chance

    good = {"DATABASE_URL": "postgresql://u@pgbouncer:6432/app"}
    s = Settings.from_env({**good, "DATABASE_MIGRATE_URL": f"postgresql://u:{password}@db/app"})
    assert s.migrate_url is not None and password not in repr(s)
    assert s.migrate_sync_url.drivername == "postgresql+psycopg" and s.migrate_sync_url.host == "db"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**good, "DATABASE_MIGRATE_URL": f"mysql://u:{password}@db/app"})
    assert [p.variable for p in info.value.problems] == ["DATABASE_MIGRATE_URL"]
    assert password not in str(info.value)
