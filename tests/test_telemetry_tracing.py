"""Query spans on real PostgreSQL, captured by the SDK's in-memory exporter (a real exporter
of the real SDK; export over the wire is tested in test_telemetry_export.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from personal_assistant_db import Database
from personal_assistant_db.telemetry import Telemetry, add_trace_context


class Traced:
    def __init__(self, db: Database, telemetry: Telemetry, exporter: InMemorySpanExporter) -> None:
        self.db, self.telemetry, self.exporter = db, telemetry, exporter
        self.provider: TracerProvider | None = None

    def spans(self, kind: SpanKind | None = SpanKind.CLIENT) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if kind is None or s.kind == kind]


MakeTraced = Callable[..., Any]


@pytest.fixture
async def make_traced(database_url: str) -> AsyncIterator[MakeTraced]:
    started: list[Database] = []

    async def make(**overrides: Any) -> Traced:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"}, **overrides)
        telemetry = Telemetry(db, tracer_provider=provider)
        await db.start()
        started.append(db)
        traced = Traced(db, telemetry, exporter)
        traced.provider = provider
        return traced

    yield make
    for db in started:
        await db.stop()


async def test_spans_appear_with_semconv_attributes(make_traced: MakeTraced) -> None:
    t = await make_traced()
    async with t.db.connect() as conn:
        await conn.execute(text("CREATE TEMP TABLE items (id int PRIMARY KEY, secret text)"))
        await conn.execute(text("INSERT INTO items VALUES (:id, :s)"), {"id": 1, "s": "hunter2"})
        row = await conn.execute(text("SELECT secret FROM items WHERE id = :id"), {"id": 1})
        assert row.scalar_one() == "hunter2"
    spans = t.spans()
    url = t.db.settings.url
    assert [s.name for s in spans] == [f"CREATE {url.database}", "INSERT items", "SELECT items"]
    select = spans[-1]
    server = {"server.address": url.host, "server.port": url.port or 5432} if url.host else {}
    assert dict(select.attributes or {}) == {
        "db.system.name": "postgresql",
        "db.namespace": url.database,
        **server,
        "db.operation.name": "SELECT",
        "db.collection.name": "items",
        "db.query.text": "SELECT secret FROM items WHERE id = $1",
    }
    assert all("hunter2" not in str(v) for s in spans for v in (s.attributes or {}).values())
    assert not [s for s in t.spans(None) if s.name == "connect"]  # no per-checkout connect span


async def test_literals_are_redacted_or_omitted(make_traced: MakeTraced) -> None:
    redact = await make_traced()
    omit = await make_traced(trace_query_text="omit")
    for t in (redact, omit):
        async with t.db.connect() as conn:
            await conn.execute(text("SELECT 'hunter2' AS pw, 42 AS n"))
    (span,) = redact.spans()
    assert span.attributes is not None
    assert span.attributes["db.query.text"] == "SELECT ? AS pw, ? AS n"
    (span,) = omit.spans()
    assert span.attributes is not None
    assert "db.query.text" not in span.attributes
    assert span.attributes["db.operation.name"] == "SELECT"


async def test_failed_query_sets_error_status_and_sqlstate(make_traced: MakeTraced) -> None:
    t = await make_traced()
    async with t.db.connect() as conn:
        with pytest.raises(DBAPIError):
            await conn.execute(text("SELECT 1 / 0 WHERE 'hunter2' = :p"), {"p": "x"})
    (span,) = t.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["db.response.status_code"] == "22012"  # division_by_zero
    assert span.attributes["error.type"] == "22012"
    assert "hunter2" not in (span.status.description or "")
    assert t.telemetry.latency_snapshot()["SELECT"].count == 1


async def test_health_probe_queries_are_not_traced(make_traced: MakeTraced) -> None:
    t = await make_traced()
    async with t.db.connect() as conn:
        await conn.execution_options(pa_db_health=True)
        await conn.execute(text("SELECT 1"))
    assert t.spans() == []
    assert t.telemetry.latency_snapshot() == {}


async def test_request_span_is_the_parent(make_traced: MakeTraced) -> None:
    t = await make_traced()
    assert t.provider is not None
    tracer = t.provider.get_tracer("test")
    with tracer.start_as_current_span("GET /items", kind=SpanKind.SERVER) as request:
        async with t.db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    (query,) = t.spans()
    assert query.parent is not None
    assert query.parent.span_id == request.get_span_context().span_id
    assert query.context.trace_id == request.get_span_context().trace_id


async def test_uninstrument_and_instrument_are_idempotent(make_traced: MakeTraced) -> None:
    t = await make_traced()
    t.telemetry.instrument()  # already on: no duplicate listeners, so no duplicate spans
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(t.spans()) == 1
    t.telemetry.uninstrument()
    t.telemetry.uninstrument()
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 2"))
    assert len(t.spans()) == 1
    t.telemetry.instrument()
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 3"))
    assert len(t.spans()) == 2


async def test_other_engines_are_left_alone(make_traced: MakeTraced) -> None:
    t = await make_traced()
    other = create_async_engine(t.db.settings.async_url)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await other.dispose()
    assert t.spans() == []


async def test_trace_connect_adds_a_connect_span(make_traced: MakeTraced) -> None:
    t = await make_traced(trace_connect=True)
    t.exporter.clear()  # the startup probe's checkout
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    names = [s.name for s in t.spans()]
    assert names == ["connect", f"SELECT {t.db.settings.url.database}"]


async def test_tracing_off_still_measures(make_traced: MakeTraced) -> None:
    t = await make_traced(tracing=False)
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert t.spans() == []
    assert t.telemetry.latency_snapshot()["SELECT"].count == 1


async def test_slow_queries_are_logged_without_values(make_traced: MakeTraced) -> None:
    t = await make_traced(slow_query_ms=50)
    with structlog.testing.capture_logs() as logs:
        async with t.db.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.1), 'hunter2'"))
            await conn.execute(text("SELECT 1"))
    slow = [e for e in logs if e["event"] == "db.query.slow"]
    assert len(slow) == 1
    assert slow[0]["operation"] == "SELECT"
    assert slow[0]["ms"] >= 100
    assert slow[0]["sql"] == "SELECT pg_sleep(?), ?"
    assert "hunter2" not in repr(slow[0])


async def test_log_processor_adds_trace_and_span_ids(make_traced: MakeTraced) -> None:
    t = await make_traced()
    assert t.provider is not None
    tracer = t.provider.get_tracer("test")
    assert add_trace_context(None, "info", {"event": "outside"}) == {"event": "outside"}
    with tracer.start_as_current_span("request") as span:
        event = add_trace_context(None, "info", {"event": "inside"})
    ctx = span.get_span_context()
    assert event["trace_id"] == format(ctx.trace_id, "032x")
    assert event["span_id"] == format(ctx.span_id, "016x")


async def test_executemany_and_driver_sql_are_traced(make_traced: MakeTraced) -> None:
    t = await make_traced()
    async with t.db.connect() as conn:
        await conn.exec_driver_sql("CREATE TEMP TABLE pairs (a int, b text)")
        await conn.execute(
            text("INSERT INTO pairs VALUES (:a, :b)"), [{"a": i, "b": "hunter2"} for i in range(5)]
        )
        await conn.exec_driver_sql("SELECT count(*) FROM pairs")
    names = [s.name for s in t.spans()]
    assert names == [f"CREATE {t.db.settings.url.database}", "INSERT pairs", "SELECT pairs"]
    assert t.telemetry.latency_snapshot()["INSERT"].count == 1


async def test_only_our_dialect_instance_is_wrapped(make_traced: MakeTraced) -> None:
    t = await make_traced()
    dialect = t.db.engine.sync_engine.dialect
    assert "do_execute" in vars(dialect)
    assert type(dialect).do_execute.__qualname__.endswith("Dialect.do_execute")
    t.telemetry.uninstrument()
    assert "do_execute" not in vars(dialect)


async def test_two_telemetries_on_one_engine_unhook_cleanly(make_traced: MakeTraced) -> None:
    t = await make_traced()
    second = Telemetry(t.db, tracing=False)  # attached late: wraps on top of the first
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(t.spans()) == 1 and second.latency_snapshot()["SELECT"].count == 1
    t.telemetry.uninstrument()  # under the second one: stays in the chain, passes through
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(t.spans()) == 1 and second.latency_snapshot()["SELECT"].count == 2
    second.uninstrument()  # restores what it wrapped: the first one's pass-through wrapper
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(t.spans()) == 1 and second.latency_snapshot()["SELECT"].count == 2
    t.telemetry.instrument()  # the first one can come back
    async with t.db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(t.spans()) == 2


def test_stock_instrumentor_works_on_the_pinned_sqlalchemy() -> None:
    """bench/tracing.py compares against SQLAlchemyInstrumentor().instrument(); on SQLAlchemy 2.1
    it silently instruments nothing. In a child interpreter (instrument() is process-wide)."""
    import subprocess
    import sys

    script = """
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import sqlalchemy
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
engine = sqlalchemy.create_engine("sqlite://")
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT 1")
print(sorted(s.name for s in exporter.get_finished_spans()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # Its query span, plus the per-checkout connect span our own hook leaves out.
    assert done.stdout.strip() == "['SELECT', 'connect']"
