"""Trace export over the wire: the real OTLP/HTTP exporter, configured from OTEL_* variables,
sending to a local receiver (tests/otlp_receiver.py) that decodes ExportTraceServiceRequest.
Jaeger cannot run here; the receiver stands in for it, speaking the same protocol."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from otlp_receiver import OtlpReceiver
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from personal_assistant_db import Database
from personal_assistant_db.telemetry import Telemetry, tracer_provider_from_env
from personal_assistant_db.telemetry.exporter import SHUTDOWN_FLUSH_SECONDS, sampler_from_env


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint, **extra}


def make_app(database_url: str, endpoint: str) -> tuple[Starlette, Telemetry, Database]:
    db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"})
    telemetry = Telemetry(db, environ=otel_env(endpoint, OTEL_SERVICE_NAME="orders-api"))

    async def items(request: Request) -> JSONResponse:
        database: Database = request.state.personal_assistant_db
        provider = telemetry.export.provider
        assert provider is not None
        tracer = provider.get_tracer("test-app")
        # The host's HTTP instrumentation would open this span; here the route does.
        with tracer.start_as_current_span("GET /items", kind=SpanKind.SERVER):
            async with database.connect() as conn:
                value = (await conn.execute(text("SELECT 41 + :n"), {"n": 1})).scalar_one()
        return JSONResponse({"value": value})

    return Starlette(routes=[Route("/items", items)], lifespan=db.lifespan), telemetry, db


async def test_spans_reach_the_receiver_under_the_request_span(
    database_url: str, receiver: OtlpReceiver
) -> None:
    app, telemetry, db = make_app(database_url, receiver.endpoint)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/items")
        assert response.json() == {"value": 42}
    # The lifespan stopped the Database; its on_stop hook flushed and shut down our provider.
    by_name = {s.name: s for s in receiver.spans}
    request = by_name["GET /items"]
    query = by_name[f"SELECT {db.settings.url.database}"]
    assert query.parent_span_id == request.span_id
    assert query.trace_id == request.trace_id
    assert query.kind == 3  # SPAN_KIND_CLIENT
    assert query.resource["service.name"] == "orders-api"
    assert query.scope == "personal_assistant_db"
    assert query.attributes["db.system.name"] == "postgresql"
    assert query.attributes["db.query.text"] == "SELECT ? + $1"
    assert query.attributes["db.operation.name"] == "SELECT"
    assert telemetry.export.provider is None


async def test_endpoint_down_never_blocks_queries(database_url: str) -> None:
    rx = OtlpReceiver().start()
    endpoint = rx.endpoint
    rx.stop()  # nothing listens on the port any more
    db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"})
    telemetry = Telemetry(db, environ=otel_env(endpoint), export_timeout=1.0)
    with structlog.testing.capture_logs() as logs:
        await db.start()
        slowest = 0.0
        for _ in range(50):
            began = time.perf_counter()
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))
            slowest = max(slowest, time.perf_counter() - began)
        export = telemetry.export
        await db.stop()  # flushes: the batch fails and is counted
    # Export retries run on the processor's thread with a 1 s budget; no query waited for it.
    assert slowest < 0.5, slowest
    assert export.exporter is not None and export.exporter.dropped >= 50
    dropped = [e for e in logs if e["event"] == "otel.spans.dropped"]
    assert dropped and dropped[-1]["dropped_total"] >= 50
    assert telemetry.latency_snapshot()["SELECT"].count == 50


@pytest.mark.parametrize("down", ["refused", "silent"])
async def test_stopping_with_the_endpoint_down_takes_at_most_the_flush_budget(
    database_url: str, down: str
) -> None:
    """The demo took ~7 s to stop with Jaeger down: the OTLP exporter retried with backoff for
    up to its 10 s timeout and the provider's shutdown waited. The flush now gets
    SHUTDOWN_FLUSH_SECONDS (2 s) whether the port refuses or accepts and never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts connections (the kernel's backlog) and never answers
    port = silent.getsockname()[1]
    if down == "refused":
        silent.close()
    db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"})
    telemetry = Telemetry(db, environ=otel_env(f"http://127.0.0.1:{port}/v1/traces"))
    try:
        await db.start()
        for _ in range(20):
            await db.fetch_val(text("SELECT 1"))
        export = telemetry.export
        began = time.perf_counter()
        await db.stop()
        took = time.perf_counter() - began
    finally:
        silent.close()
    # The flush budget, not the exporter's 10 s timeout (2x: a loaded machine's slack).
    assert took < 2 * SHUTDOWN_FLUSH_SECONDS, took
    assert export.exporter is not None and export.exporter.closed


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "lots"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"OTEL_SDK_DISABLED": "maybe"}, "OTEL_SDK_DISABLED"),
    ],
)
def test_garbage_values_warn_and_fall_back(env: dict[str, str], variable: str) -> None:
    with structlog.testing.capture_logs() as logs:
        export = tracer_provider_from_env(otel_env("http://127.0.0.1:4318/v1/traces", **env))
    try:
        warnings = [e for e in logs if e["event"] == "otel.config.invalid"]
        assert [w["variable"] for w in warnings] == [variable]
        assert warnings[0]["expected"] and warnings[0]["fallback"]
        assert isinstance(export.provider, TracerProvider)  # tracing still works
        assert export.owned
    finally:
        export.shutdown(timeout=0.1)


@pytest.mark.parametrize(
    "endpoint", ["not a url", "ftp://collector:4318", "http://", "http://host:99999/v1/traces"]
)
def test_bad_endpoint_warns_and_disables_export(endpoint: str) -> None:
    with structlog.testing.capture_logs() as logs:
        export = tracer_provider_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    assert export.provider is None
    (warning,) = [e for e in logs if e["event"] == "otel.config.invalid"]
    assert warning["variable"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert "http" in warning["expected"]


def test_sampler_choices() -> None:
    ratio = sampler_from_env(
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert isinstance(ratio, TraceIdRatioBased) and ratio.rate == 0.25
    parent = sampler_from_env({"OTEL_TRACES_SAMPLER": "parentbased_always_off"})
    assert isinstance(parent, ParentBased)
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "always_off"}) is ALWAYS_OFF


def test_disabled_or_unconfigured_means_no_provider() -> None:
    assert tracer_provider_from_env({}).provider is None
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    assert tracer_provider_from_env(disabled).provider is None
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # nothing global was set


def test_host_provider_is_used_and_left_alone() -> None:
    """Setting a global provider is once-per-process, so this runs in a child interpreter."""
    script = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from personal_assistant_db.telemetry import tracer_provider_from_env
host = TracerProvider()
trace.set_tracer_provider(host)
export = tracer_provider_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
export.shutdown()
assert export.provider is trace.get_tracer_provider() and not export.owned
with host.get_tracer("t").start_as_current_span("still-open") as span:
    assert span.is_recording()  # our shutdown() did not shut the host's provider down
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_garbage_sdk_variables_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads OTEL_BSP_* from os.environ itself and raises on bad values."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-5")
    with structlog.testing.capture_logs() as logs:
        export = tracer_provider_from_env(otel_env("http://127.0.0.1:4318/v1/traces"))
    try:
        (warning,) = [e for e in logs if e["event"] == "otel.config.invalid"]
        assert warning["variable"] == "OTEL_BSP_*"
        assert "max_queue_size" in warning["value"]
        assert isinstance(export.provider, TracerProvider)
    finally:
        export.shutdown(timeout=0.1)
