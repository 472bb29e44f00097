"""Semconv metrics from real queries and a real pool, read back through the Prometheus
exposition (parsed with prometheus_client's own parser) and through OTel metric readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import structlog.testing
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from personal_assistant_db import Database
from personal_assistant_db.telemetry import Telemetry
from personal_assistant_db.telemetry.metrics import DURATION_BUCKETS

MakeDb = Callable[..., Any]


@pytest.fixture
async def make_db(database_url: str) -> AsyncIterator[MakeDb]:
    started: list[Database] = []

    async def make(**overrides: Any) -> tuple[Database, Telemetry]:
        options = {
            k: overrides.pop(k) for k in ("meter_provider", "metric_exporters") if k in overrides
        }
        db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"}, **overrides)
        telemetry = Telemetry(db, tracing=False, **options)
        await db.start()
        started.append(db)
        return db, telemetry

    yield make
    for db in started:
        await db.stop()


def scrape(telemetry: Telemetry, accept: str | None = None) -> dict[str, dict[tuple, float]]:
    body, content_type = telemetry.prometheus_exposition(accept)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def one(samples: dict[tuple, float], **labels: str) -> float:
    found = [v for k, v in samples.items() if all((n, x) in k for n, x in labels.items())]
    assert len(found) == 1, (labels, samples)
    return found[0]


async def test_duration_histogram_counts_every_query(make_db: MakeDb) -> None:
    db, telemetry = await make_db()
    fast: list[float] = []  # each SELECT 1 as the caller saw it: >= what the histogram records
    async with db.connect() as conn:
        for _ in range(7):
            began = time.perf_counter()
            await conn.execute(text("SELECT 1"))
            fast.append(time.perf_counter() - began)
        began = time.perf_counter()
        await conn.execute(text("SELECT pg_sleep(0.02)"))
        total = sum(fast) + time.perf_counter() - began
    m = scrape(telemetry)
    count = m["db_client_operation_duration_seconds_count"]
    assert one(count, db_operation_name="SELECT", db_system_name="postgresql") == 8
    buckets = m["db_client_operation_duration_seconds_bucket"]
    assert sorted({dict(k)["le"] for k in buckets}, key=float) == [
        *(str(float(b)) for b in DURATION_BUCKETS),
        "+Inf",
    ]
    # Each query lands in the bucket of its own duration. A loaded machine may make SELECT 1
    # slower than 10 ms, so the bounds come from what the caller measured around each query:
    # a query the caller saw finish within a bound was recorded within it, and the
    # pg_sleep(0.02) query can never be counted at or below 10 ms.
    for bound in DURATION_BUCKETS:
        within = sum(1 for took in fast if took <= bound)
        assert one(buckets, le=str(float(bound))) >= within
    assert one(buckets, le="0.01") <= 7
    assert one(buckets, le="+Inf") == 8
    recorded = one(m["db_client_operation_duration_seconds_sum"], db_operation_name="SELECT")
    assert 0.02 <= recorded <= total


async def test_pool_metrics_follow_the_pool(make_db: MakeDb) -> None:
    db, telemetry = await make_db(pool_size=1, max_overflow=0, pool_timeout=0.3)
    async with db.connect() as held:
        await held.execute(text("SELECT 1"))
        m = scrape(telemetry)
        count = m["db_client_connection_count"]
        assert one(count, db_client_connection_state="used") == 1
        assert one(count, db_client_connection_state="idle") == 0
        assert one(m["db_client_connection_max"]) == 1
        waiter = asyncio.create_task(_checkout(db))
        await asyncio.sleep(0.1)
        assert one(scrape(telemetry)["db_client_connection_pending_requests"]) == 1
        with pytest.raises(PoolTimeout):
            await waiter
    m = scrape(telemetry)
    assert one(m["db_client_connection_timeouts_total"]) == 1
    assert one(m["db_client_connection_pending_requests"]) == 0
    assert one(m["db_client_connection_count"], db_client_connection_state="idle") == 1
    assert one(m["db_client_connection_wait_time_seconds_count"]) >= 2  # incl. the timed-out one
    assert one(m["db_client_connection_use_time_seconds_count"]) >= 1
    assert one(m["db_client_connection_create_time_seconds_count"]) >= 1


async def _checkout(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def test_openmetrics_is_negotiated(make_db: MakeDb) -> None:
    db, telemetry = await make_db()
    async with db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    body, content_type = telemetry.prometheus_exposition(
        "application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert b"db_client_operation_duration_seconds_bucket" in body


async def test_host_meter_provider_gets_the_semconv_histogram(make_db: MakeDb) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    db, _ = await make_db(meter_provider=provider)
    async with db.connect() as conn:
        for _ in range(3):
            await conn.execute(text("SELECT 1"))
    points = _points(reader.get_metrics_data(), "db.client.operation.duration")
    assert len(points) == 1 and points[0].count == 3
    assert list(points[0].explicit_bounds) == list(DURATION_BUCKETS)
    assert _points(reader.get_metrics_data(), "db.client.connection.count")
    waits = _points(reader.get_metrics_data(), "db.client.connection.wait_time")
    assert waits and waits[0].count >= 1


@pytest.mark.parametrize("option", ["metric_export_interval", "export_timeout"])
async def test_bad_options_name_the_parameter(database_url: str, option: str) -> None:
    db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"})
    with pytest.raises(ValueError, match=f"{option} must be seconds > 0, got -1"):
        Telemetry(db, **{option: -1})


class Collecting(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exports: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


async def test_metric_exporters_receive_our_histograms(make_db: MakeDb) -> None:
    inner = Collecting()
    db, telemetry = await make_db(metric_exporters=[inner])
    async with db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    telemetry.close()  # shuts the private MeterProvider down, which exports one last time
    points = _points(inner.exports[-1], "db.client.operation.duration")
    assert points and points[0].count == 1
    assert _points(inner.exports[-1], "db.client.connection.count")


async def test_p95_and_budget(make_db: MakeDb) -> None:
    db, telemetry = await make_db(query_p95_budget_ms=10)
    assert telemetry.overall_p95() is None
    assert not telemetry.p95_over_budget()
    async with db.connect() as conn:
        for _ in range(5):
            await conn.execute(text("SELECT pg_sleep(0.03)"))
    p95 = telemetry.overall_p95()
    assert p95 is not None and 0.03 <= p95 < 1.0
    assert telemetry.p95_over_budget()
    snapshot = telemetry.latency_snapshot()
    assert snapshot["SELECT"].count == 5
    assert snapshot["SELECT"].p50 <= snapshot["SELECT"].p95 <= snapshot["SELECT"].p99


def _points(data: MetricsData | None, name: str) -> Sequence[HistogramDataPoint]:
    assert data is not None
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points  # type: ignore[misc]
    ]


def test_histogram_cardinality_is_bounded() -> None:
    from personal_assistant_db.telemetry.metrics import (
        CARDINALITY_LIMIT,
        OVERFLOW_ATTRIBUTES,
        duration_histogram,
    )

    histogram = duration_histogram()
    for day in range(CARDINALITY_LIMIT + 50):  # e.g. one partition table per day
        histogram.record(0.002, {"db.operation.name": "SELECT", "db.collection.name": f"t{day}"})
    metric = histogram.metric(0, 1)
    assert metric is not None
    points = metric.data.data_points
    assert len(points) == CARDINALITY_LIMIT + 1
    (overflow,) = [p for p in points if p.attributes == OVERFLOW_ATTRIBUTES]
    assert overflow.count == 50
    assert sum(p.count for p in points) == CARDINALITY_LIMIT + 50


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "billing-api"), ({"OTEL_SERVICE_NAME": "billing-otel"}, "billing-otel")],
)
async def test_service_name_defaults_to_the_application_name(
    database_url: str, environ: dict[str, str], expected: str
) -> None:
    env = {"DATABASE_URL": database_url, "DB_ENV": "test", "DB_APPLICATION_NAME": "billing-api"}
    db = Database.from_env(env)
    telemetry = Telemetry(db, tracing=False, environ=environ)
    with structlog.testing.capture_logs() as logs:
        await db.start()
    try:
        target = scrape(telemetry)["target_info"]
        assert one(target, service_name=expected) == 1
        assert "unknown_service" not in str(target)
        [started] = [e for e in logs if e["event"] == "otel.telemetry.start"]
        assert started["service_name"] == expected
    finally:
        await db.stop()
        telemetry.close()
