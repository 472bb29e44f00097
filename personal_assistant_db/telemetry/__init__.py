"""OpenTelemetry for our one engine: query spans, semconv metrics, Prometheus, percentiles.

``Telemetry(db)`` attaches through ``Database.add_hooks``; it never creates an engine and never
patches other engines in the process. See docs/tracing.md.
"""

from __future__ import annotations

from .exporter import CountingSpanExporter, TraceExport, tracer_provider_from_env
from .instrumentation import Telemetry
from .latency import LatencyWindow, OperationLatency
from .sql import redact_sql
from .tracing import HEALTH_OPTION, QueryObserver, add_trace_context

__all__ = [
    "HEALTH_OPTION",
    "CountingSpanExporter",
    "LatencyWindow",
    "OperationLatency",
    "QueryObserver",
    "Telemetry",
    "TraceExport",
    "add_trace_context",
    "redact_sql",
    "tracer_provider_from_env",
]
