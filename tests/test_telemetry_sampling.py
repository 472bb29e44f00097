"""The hook's own sampling and leaf spans match what the OpenTelemetry SDK would have made."""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from sqlalchemy.exc import DBAPIError

from personal_assistant_db import Database, Telemetry
from personal_assistant_db.telemetry.sampling import Sampling


class OpaqueProcessor(SimpleSpanProcessor):
    """Not a processor the hook knows: the SDK's start_span path is used."""


def provider(leaf: bool, sampler: Any = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    p = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "svc"}))
    p.add_span_processor(SimpleSpanProcessor(exporter) if leaf else OpaqueProcessor(exporter))
    return p, exporter


def shape(span: ReadableSpan) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "flags": span.context.trace_flags,
        "parent": span.parent.span_id if span.parent else None,
        "trace_is_parents": span.parent is None or span.parent.trace_id == span.context.trace_id,
        "resource": dict(span.resource.attributes),
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "timed": span.start_time is not None
        and span.end_time is not None
        and span.end_time >= span.start_time,
        "events": len(span.events),
    }


async def spans_for(db: Database, leaf: bool) -> list[dict[str, Any]]:
    p, exporter = provider(leaf, ParentBased(ALWAYS_ON))
    telemetry = Telemetry(db, tracer_provider=p, tracing=True)
    assert (telemetry.observer.sampling is not None) and telemetry.observer.sampling.leaf == leaf
    try:
        await db.fetch_val(sa.text("SELECT 1"))
        with p.get_tracer("t").start_as_current_span("request"):
            async with db.connect() as conn:
                await conn.execute(sa.text("SELECT 2"))
            with contextlib.suppress(DBAPIError):
                await db.fetch_val(sa.text("SELECT CAST('x' AS integer)"))
        spans = [s for s in exporter.get_finished_spans() if s.name != "request"]
        request = next(s for s in exporter.get_finished_spans() if s.name == "request")
        assert request.context is not None
        assert [s.parent.span_id if s.parent else None for s in spans] == [
            None,
            request.context.span_id,
            request.context.span_id,
        ]
        return [shape(s) for s in spans]
    finally:
        telemetry.uninstrument()
        telemetry.close()
        p.shutdown()


async def test_leaf_spans_equal_the_sdks_spans(db: Database) -> None:
    leaf = await spans_for(db, leaf=True)
    sdk = await spans_for(db, leaf=False)
    for mine, theirs in zip(leaf, sdk, strict=True):
        mine.pop("parent"), theirs.pop("parent")
        assert mine == theirs
    assert leaf[2]["attributes"]["db.response.status_code"] == "22P02"


def test_unknown_samplers_are_left_to_the_sdk() -> None:
    class Custom(TraceIdRatioBased):
        pass

    assert Sampling.of(TracerProvider(sampler=Custom(0.5)).get_tracer("t")) is None
    assert Sampling.of(trace.NoOpTracer()) is None
    known = Sampling.of(TracerProvider(sampler=TraceIdRatioBased(0.25)).get_tracer("t"))
    assert known is not None and known.bound == TraceIdRatioBased(0.25).bound
    assert not known.children  # a bare ratio sampler decides children itself: the SDK does
