"""The query listener: one lean ``before/after_cursor_execute`` pair on OUR engine only.

Per query it starts a CLIENT span (when a tracer is set), and on the way out ends it, records
``db.client.operation.duration``, adds the duration to the latency window and logs the query if
it was slow. Everything derived from the SQL text (span name, attributes, redacted
``db.query.text``) is computed once per distinct statement and cached.

Why not ``opentelemetry-instrumentation-sqlalchemy``'s ``EngineTracer``? Its listeners parse the
URL and re-derive every attribute on every query, emit the deprecated
``db.client.connections.usage`` from four pool events per checkout, and record no duration
histogram, so we would need a second listener pair anyway. bench/tracing.py measures both; see
docs/tracing.md for the figures.

Queries on a connection with execution option ``pa_db_health=True`` (the health probes) are
neither traced nor measured.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..logging import get_logger
from .latency import LatencyWindow
from .metrics import BucketHistogram, HistogramSeries
from .sql import analyse

__all__ = ["HEALTH_OPTION", "QueryObserver", "add_trace_context"]

HEALTH_OPTION = "pa_db_health"
_STATE = "_pa_db_telemetry"
_CACHE_LIMIT = 2048
log = get_logger()


@dataclass(frozen=True, slots=True)
class _Statement:
    operation: str
    span_name: str
    span_attrs: dict[str, Any]
    metric_attrs: dict[str, Any]
    text: str
    series: HistogramSeries | None


class QueryObserver:
    """Listeners that feed span, histogram, latency window and slow-query log in one place."""

    def __init__(
        self,
        *,
        tracer: Tracer | None,
        duration: BucketHistogram | None,
        latency: LatencyWindow | None,
        api_duration: Histogram | None = None,
        span_base: dict[str, Any],
        metric_base: dict[str, Any],
        namespace: str | None,
        query_text: str = "redact",
        slow_query_seconds: float = 0.0,
    ) -> None:
        self.tracer = tracer
        self.duration = duration
        self.api_duration = api_duration
        self.latency = latency
        self.span_base = span_base
        self.metric_base = metric_base
        self.namespace = namespace
        self.query_text = query_text
        self.slow = slow_query_seconds if slow_query_seconds > 0 else float("inf")
        self._statements: dict[str, _Statement] = {}
        self._engine: Engine | None = None

    # -- install ---------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Listen on ``engine`` (the sync engine of our AsyncEngine). Idempotent."""
        if self._engine is engine:
            return
        self.detach()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._error)
        self._engine = engine

    def detach(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        for name, fn in (
            ("before_cursor_execute", self._before),
            ("after_cursor_execute", self._after),
            ("handle_error", self._error),
        ):
            if event.contains(engine, name, fn):
                event.remove(engine, name, fn)

    @property
    def attached(self) -> bool:
        return self._engine is not None

    # -- statements ------------------------------------------------------------------------
    def _describe(self, statement: str) -> _Statement:
        info = analyse(statement)
        target = info.collection or self.namespace
        span_name = f"{info.operation} {target}" if target else info.operation
        span_attrs = dict(self.span_base)
        span_attrs["db.operation.name"] = info.operation
        metric_attrs = dict(self.metric_base)
        metric_attrs["db.operation.name"] = info.operation
        if info.collection:
            span_attrs["db.collection.name"] = info.collection
            metric_attrs["db.collection.name"] = info.collection
        if self.query_text == "redact":
            span_attrs["db.query.text"] = info.text
        series = self.duration.series(metric_attrs) if self.duration is not None else None
        described = _Statement(
            info.operation, span_name, span_attrs, metric_attrs, info.text, series
        )
        if len(self._statements) >= _CACHE_LIMIT:
            self._statements.clear()
        self._statements[statement] = described
        return described

    # -- listeners -------------------------------------------------------------------------
    def _before(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or context.execution_options.get(HEALTH_OPTION):
            return
        stmt = self._statements.get(statement) or self._describe(statement)
        tracer = self.tracer
        span = (
            tracer.start_span(stmt.span_name, kind=SpanKind.CLIENT, attributes=stmt.span_attrs)
            if tracer is not None
            else None
        )
        setattr(context, _STATE, (stmt, span, time.perf_counter()))

    def _after(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        state = context.__dict__.pop(_STATE, None) if context is not None else None
        if state is None:
            return
        stmt, span, started = state
        elapsed = time.perf_counter() - started
        if span is not None:
            span.end()
        if stmt.series is not None:
            stmt.series.record(elapsed)
        if self.api_duration is not None:
            self.api_duration.record(elapsed, stmt.metric_attrs)
        if self.latency is not None:
            self.latency.record(stmt.operation, elapsed)
        if elapsed >= self.slow:
            self._log_slow(stmt, elapsed, None)

    def _error(self, ctx: Any) -> None:
        context = ctx.execution_context
        state = context.__dict__.pop(_STATE, None) if context is not None else None
        if state is None:
            return
        stmt, span, started = state
        elapsed = time.perf_counter() - started
        original = ctx.original_exception
        sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        error_type = str(sqlstate) if sqlstate else type(original).__qualname__
        if span is not None:
            if span.is_recording():
                span.set_attribute("error.type", error_type)
                if sqlstate:
                    span.set_attribute("db.response.status_code", str(sqlstate))
                # The description is the class only: server messages can quote row values.
                span.set_status(Status(StatusCode.ERROR, type(original).__name__))
            span.end()
        attrs = dict(stmt.metric_attrs)
        attrs["error.type"] = error_type
        if self.duration is not None:
            self.duration.record(elapsed, attrs)
        if self.api_duration is not None:
            self.api_duration.record(elapsed, attrs)
        if self.latency is not None:
            self.latency.record(stmt.operation, elapsed)
        if elapsed >= self.slow:
            self._log_slow(stmt, elapsed, error_type)

    def _log_slow(self, stmt: _Statement, elapsed: float, error_type: str | None) -> None:
        log.warning(
            "db.query.slow",
            operation=stmt.operation,
            ms=round(elapsed * 1000, 1),
            threshold_ms=round(self.slow * 1000, 1),
            sql=stmt.text,
            error_type=error_type,
        )


def add_trace_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add ``trace_id`` and ``span_id`` (hex) inside a recording span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
