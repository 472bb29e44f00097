"""The query hook: one lean wrapper around OUR engine's execute calls.

Per query it starts a CLIENT span (when a tracer is set), and on the way out ends it, adds the
duration to ``db.client.operation.duration`` and to the latency window, and logs the query if it
was slow. Everything derived from the SQL text (span name, attributes, redacted
``db.query.text``) is computed once per distinct statement and cached.

Where it hooks, and why (measured; docs/tracing.md has the figures):

- ``opentelemetry-instrumentation-sqlalchemy``'s ``EngineTracer`` re-derives every attribute from
  the URL on every query, adds four pool listeners per checkout for the deprecated
  ``db.client.connections.usage``, and records no duration histogram: 0.6-0.7x of plain
  SQLAlchemy in bench/tracing.py.
- A ``before/after_cursor_execute`` listener pair on ``engine.sync_engine`` (this module's first
  version) is lean itself, but once any Connection event is registered SQLAlchemy joins the
  engine's dispatcher into every new Connection and routes each execute through it: 122 more
  Python calls per query, of which ~25 are ours.
- So the hook wraps ``do_execute`` / ``do_execute_no_params`` / ``do_executemany`` on the
  engine's own dialect *instance* (every engine has its own dialect object; the class and other
  engines are untouched). That is the call SQLAlchemy makes for every statement, with the cursor,
  the final SQL string and the ExecutionContext, and nothing else.

Queries on a connection with execution option ``pa_db_health=True`` (the health probes) are
neither traced nor measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy.engine import Engine

from ..logs import get_logger
from .latency import LatencySeries, LatencyWindow
from .metrics import BucketHistogram, HistogramSeries
from .sampling import Sampling
from .sql import analyse

__all__ = ["HEALTH_OPTION", "QueryObserver", "add_trace_context"]

HEALTH_OPTION = "pa_db_health"
_METHODS = ("do_execute", "do_execute_no_params", "do_executemany")
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
    latency: LatencySeries


class QueryObserver:
    """The hook that feeds span, histogram, latency window and slow-query log in one place."""

    def __init__(
        self,
        *,
        tracer: Tracer | None,
        duration: BucketHistogram | None,
        latency: LatencyWindow,
        api_duration: Histogram | None = None,
        span_base: dict[str, Any],
        metric_base: dict[str, Any],
        namespace: str | None,
        query_text: str = "redact",
        slow_query_seconds: float = 0.0,
    ) -> None:
        self.tracer = tracer
        #: The known sampler of ``tracer`` (set with it by Telemetry), or None.
        self.sampling: Sampling | None = None
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
        self._saved: dict[str, Any] = {}
        self._wrappers: dict[str, Any] = {}
        self._token: object | None = None

    # -- install ---------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Hook ``engine`` (the sync engine of our AsyncEngine). Idempotent."""
        if self._engine is engine:
            return
        self.detach()
        dialect = engine.dialect
        self._saved = {name: dialect.__dict__.get(name) for name in _METHODS}
        self._wrappers = {}
        self._token = object()
        for name in _METHODS:
            # do_execute_no_params(cursor, statement, context); the others take parameters first.
            position = 0 if name == "do_execute_no_params" else 1
            wrapper = self._wrappers[name] = self._wrap(getattr(dialect, name), position)
            setattr(dialect, name, wrapper)
        self._engine = engine

    def detach(self) -> None:
        """Unhook. A wrapper someone else put on top of ours stays, and ours passes through."""
        engine, self._engine = self._engine, None
        self._token = None
        if engine is None:
            return
        attrs = engine.dialect.__dict__
        for name in _METHODS:
            if attrs.get(name) is not self._wrappers.get(name):
                continue
            saved = self._saved.get(name)
            if saved is None:
                del attrs[name]
            else:
                attrs[name] = saved
        self._wrappers, self._saved = {}, {}

    def _wrap(self, original: Callable[..., Any], position: int) -> Callable[..., Any]:
        observer = self
        token = self._token
        perf_counter = time.perf_counter

        def execute(cursor: Any, statement: str, *args: Any, **kwargs: Any) -> Any:
            context = args[position] if len(args) > position else kwargs.get("context")
            if (
                context is None
                or observer._token is not token  # a stale wrapper left in someone's chain
                or context.execution_options.get(HEALTH_OPTION)
                # The dialect's one-time first-connect queries (server version, settings) run
                # on the only Connection SQLAlchemy builds with autobegin off: not ours to trace.
                or not context.root_connection._allow_autobegin
            ):
                return original(cursor, statement, *args, **kwargs)
            stmt = observer._statements.get(statement) or observer._describe(statement)
            span = observer.start(stmt) if observer.tracer is not None else None
            started = perf_counter()
            try:
                result = original(cursor, statement, *args, **kwargs)
            except BaseException as exc:
                observer._failed(stmt, span, perf_counter() - started, exc)
                raise
            observer.succeeded(stmt, span, started)
            return result

        return execute

    @property
    def attached(self) -> bool:
        return self._engine is not None

    # -- the fast path (fastpath.py) calls these directly ------------------------------------
    def statement(self, sql: str) -> _Statement:
        """The cached facts about ``sql`` (span name, attributes, metric series)."""
        return self._statements.get(sql) or self._describe(sql)

    def start(self, stmt: _Statement) -> Any:
        """A CLIENT span for ``stmt`` (not made current: it is a leaf), or None.

        For the common samplers and processors (see sampling.py) the decision is taken here: a
        span that would be dropped is never started, and a sampled one is built once, finished.
        """
        tracer = self.tracer
        if tracer is None:
            return None
        sampling = self.sampling
        if sampling is not None:
            return sampling.start(stmt.span_name, stmt.span_attrs)
        return tracer.start_span(stmt.span_name, kind=SpanKind.CLIENT, attributes=stmt.span_attrs)

    def succeeded(self, stmt: _Statement, span: Any, started: float) -> None:
        """End ``span`` and record the duration: the one place a successful statement is
        recorded, for the engine hook and the fast path alike."""
        ended = time.perf_counter()  # the latency window's clock too: `ended` is its "now"
        elapsed = ended - started
        if span is not None:
            span.end()
        if stmt.series is not None:
            stmt.series.record(elapsed)
        self.latency.add(stmt.latency, elapsed, ended)
        if self.api_duration is not None:
            self.api_duration.record(elapsed, stmt.metric_attrs)
        if elapsed >= self.slow:
            self._log_slow(stmt, elapsed, None)

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
        latency = self.latency.series(info.operation)
        described = _Statement(
            info.operation, span_name, span_attrs, metric_attrs, info.text, series, latency
        )
        if len(self._statements) >= _CACHE_LIMIT:
            self._statements.clear()
        self._statements[statement] = described
        return described

    def failed(self, stmt: _Statement, span: Any, elapsed: float, exc: BaseException) -> None:
        """End ``span`` as an error and record the failed duration."""
        self._failed(stmt, span, elapsed, exc)

    def _failed(self, stmt: _Statement, span: Any, elapsed: float, exc: BaseException) -> None:
        sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        error_type = str(sqlstate) if sqlstate else type(exc).__qualname__
        if span is not None:
            if span.is_recording():
                span.set_attribute("error.type", error_type)
                if sqlstate:
                    span.set_attribute("db.response.status_code", str(sqlstate))
                # The description is the class only: server messages can quote row values.
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
        attrs = dict(stmt.metric_attrs)
        attrs["error.type"] = error_type
        if self.duration is not None:
            self.duration.record(elapsed, attrs)
        if self.api_duration is not None:
            self.api_duration.record(elapsed, attrs)
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
