"""Telemetry: traces, metrics and percentiles for one Database, attached through its hooks.

    db = Database.from_env()
    telemetry = Telemetry(db)          # registers on_start/on_stop hooks; creates no engine
    app = Starlette(lifespan=db.lifespan, routes=[Mount("/health", health_app(db, telemetry))])

On start it hooks the engine's own dialect (see tracing.py) and the PoolMeter hooks; on stop it
detaches and flushes (and shuts down) a tracer provider it created itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.trace import SpanKind

from ..logs import get_logger
from .exporter import TraceExport, service_name_from_env, tracer_provider_from_env
from .latency import LatencyWindow, OperationLatency
from .metrics import DURATION_BUCKETS, PoolInstruments, duration_histogram
from .producer import MetricProducer, ProducingMetricExporter
from .prometheus import PrometheusExposition
from .replicas import ReplicaInstruments
from .sampling import Sampling
from .tracing import QueryObserver

if TYPE_CHECKING:
    from ..database import Database
    from ..replicas.node import Node

__all__ = ["Telemetry"]

_SCOPE = "personal_assistant_db"
log = get_logger()


class Telemetry:
    """Query spans, semconv metrics, Prometheus exposition and windowed percentiles for ``db``.

    - ``tracer_provider``: use this provider; default: the host's global one if set, else one
      built from ``OTEL_*`` (see exporter.py), else no spans. ``settings.tracing=False`` turns
      spans off whatever is passed.
    - ``meter_provider``: also record every metric through this (host's) provider's API; costs
      the SDK's 3.5-7 us per histogram record. ``prometheus_exposition()`` keeps working.
    - ``tracing``: override ``settings.tracing`` (``False``: metrics and percentiles only).
    - ``metrics_enabled``: ``False`` skips the duration histogram and pool metrics.
    - ``metric_exporters``: OTel MetricExporters (e.g. ``OTLPMetricExporter()``) that receive
      every metric, histograms included, each ``metric_export_interval`` seconds.
    - ``export_timeout``: seconds the OTLP exporter may spend on one batch (its own thread).
    - ``environ``: the mapping to read ``OTEL_*`` from (default ``os.environ``).
    """

    def __init__(
        self,
        db: Database,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        environ: Mapping[str, str] | None = None,
        tracing: bool | None = None,
        metrics_enabled: bool = True,
        metric_exporters: Sequence[MetricExporter] = (),
        metric_export_interval: float = 60.0,
        export_timeout: float = 10.0,
    ) -> None:
        for name, value in (
            ("metric_export_interval", metric_export_interval),
            ("export_timeout", export_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be seconds > 0, got {value!r}")
        self.db = db
        s = db.settings
        self.settings = s
        self.tracing = s.tracing if tracing is None else tracing
        self.latency = LatencyWindow(s.latency_window)
        self._environ = environ
        self._export_timeout = export_timeout
        self._given_tracer_provider = tracer_provider
        self.export: TraceExport = TraceExport(provider=None)
        self.metrics_enabled = metrics_enabled
        self.duration = duration_histogram()
        nodes = db.nodes  # the primary, then each replica
        self.pool = PoolInstruments(nodes, s.application_name, db.fast_path.fallbacks)
        self.producer = MetricProducer([self.duration, *self.pool.histograms])
        self.exposition = PrometheusExposition(self.producer)
        readers: list[MetricReader] = [self.exposition.reader]
        readers += [
            PeriodicExportingMetricReader(
                ProducingMetricExporter(exporter, self.producer),
                export_interval_millis=metric_export_interval * 1000,
            )
            for exporter in metric_exporters
        ]
        # OTEL_SERVICE_NAME, else DB_APPLICATION_NAME (OpenTelemetry's: unknown_service:python)
        self.service_name = service_name_from_env(environ, default=s.application_name)
        self._own_meter_provider: MeterProvider | None = MeterProvider(
            metric_readers=readers,
            resource=Resource.create({SERVICE_NAME: self.service_name}),
            shutdown_on_exit=False,
        )
        own_meter = self._own_meter_provider.get_meter(_SCOPE)
        self.pool.observe(own_meter)
        self._replica_nodes = nodes[1:]
        self.replicas = ReplicaInstruments(self._replica_nodes, db.replicas.router)
        self.replicas.observe(own_meter)
        api_duration = None
        if meter_provider is not None:
            host_meter = meter_provider.get_meter(_SCOPE)
            self.pool.observe(host_meter, record_histograms=True)
            self.replicas.observe(host_meter)
            api_duration = host_meter.create_histogram(
                self.duration.name,
                unit="s",
                description=self.duration.description,
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
        url = s.url

        def observer(node: Node | None, latency: LatencyWindow) -> QueryObserver:
            # One hook per engine. With replicas, every node's series and spans name the node.
            host, port = (url.host, url.port) if node is None else (node.address, node.port)
            metric_base: dict[str, Any] = {"db.system.name": "postgresql"}
            if node is not None:
                metric_base.update(
                    {"db.role": node.role, "server.address": node.address, "server.port": port}
                )
            return QueryObserver(
                tracer=None,
                duration=self.duration if metrics_enabled else None,
                api_duration=api_duration if metrics_enabled else None,
                latency=latency,
                span_base=_span_base(url.database, host, port),
                metric_base=metric_base,
                namespace=url.database,
                query_text=s.trace_query_text,
                slow_query_seconds=s.slow_query_ms / 1000,
            )

        self.observer = observer(nodes[0] if len(nodes) > 1 else None, self.latency)
        #: Replica name -> its query hook; each keeps its own P50/P95/P99 window.
        self.replica_observers = {
            node.name: observer(node, LatencyWindow(s.latency_window)) for node in nodes[1:]
        }
        db.add_hooks(on_start=self._on_start, on_stop=self._on_stop)
        if db.started:  # attached late: instrument the running engine now
            self.instrument()

    def __repr__(self) -> str:
        tracing = "on" if self.observer.tracer is not None else "off"
        return f"<Telemetry tracing={tracing} attached={self.observer.attached}>"

    # -- lifecycle (Database hooks) ---------------------------------------------------------
    def _on_start(self, db: Database) -> None:
        self.instrument()

    async def _on_stop(self, db: Database) -> None:
        self.uninstrument()
        export, self.export = self.export, TraceExport(provider=None)
        if export.owned:
            await asyncio.to_thread(export.shutdown)

    def instrument(self) -> None:
        """Listen on the started engine and pool (idempotent; the on_start hook calls it)."""
        if self.observer.attached:
            return
        if self.tracing and self.export.provider is None:
            if self._given_tracer_provider is not None:
                self.export = TraceExport(provider=self._given_tracer_provider, owned=False)
            else:
                self.export = tracer_provider_from_env(
                    self._environ,
                    export_timeout=self._export_timeout,
                    service_name=self.service_name,
                )
        provider = self.export.provider if self.tracing else None
        self.observer.tracer = provider.get_tracer(_SCOPE) if provider is not None else None
        self.observer.sampling = Sampling.of(self.observer.tracer)
        self.observer.attach(self.db.engine.sync_engine)
        self.db.fast_path.observer = self.observer
        for node in self._replica_nodes:
            replica = self.replica_observers[node.name]
            replica.tracer = self.observer.tracer
            replica.sampling = self.observer.sampling
            if node.engine is not None:
                replica.attach(node.engine.sync_engine)
            if self.db.replica_reads is not None:
                self.db.replica_reads.by_name[node.name].observer = replica
        if self.metrics_enabled:
            self.pool.attach()
        if self.settings.trace_connect and self.observer.tracer is not None:
            self.db.meter.on_wait.append(self._connect_span)
        hosts = provider is not None and not self.export.owned
        log.info(
            "otel.telemetry.start",
            # A host's tracer provider carries its own resource; our metrics still use this name.
            service_name=self.service_name,
            tracing=self.observer.tracer is not None,
            tracer_provider="the host's" if hosts else "ours" if provider else None,
        )

    def uninstrument(self) -> None:
        """Remove every listener and hook from the engine and pool (idempotent)."""
        self.observer.detach()
        if self.db.fast_path.observer is self.observer:
            self.db.fast_path.observer = None
        for name, replica in self.replica_observers.items():
            replica.detach()
            replica.tracer = None
            reads = self.db.replica_reads
            if reads is not None and reads.by_name[name].observer is replica:
                reads.by_name[name].observer = None
        self.pool.detach()
        while self._connect_span in self.db.meter.on_wait:
            self.db.meter.on_wait.remove(self._connect_span)
        self.observer.tracer = None

    def close(self) -> None:
        """Shut down our private meter provider (the Prometheus reader stops collecting)."""
        if self._own_meter_provider is not None:
            self._own_meter_provider.shutdown()
            self._own_meter_provider = None

    def _connect_span(self, seconds: float) -> None:
        tracer = self.observer.tracer
        if tracer is None:
            return
        end = time.time_ns()
        span = tracer.start_span(
            "connect",
            kind=SpanKind.CLIENT,
            attributes=self.observer.span_base,
            start_time=end - int(seconds * 1e9),
        )
        span.end(end_time=end)

    # -- reading (health, alerts) -----------------------------------------------------------
    def latency_snapshot(self) -> dict[str, OperationLatency]:
        """Operation name -> count and P50/P95/P99 (seconds) over ``settings.latency_window``."""
        return self.latency.snapshot()

    def latency_by_node(self) -> dict[str, dict[str, OperationLatency]]:
        """Node ("primary" or a replica's host:port) -> its own latency snapshot."""
        out = {"primary": self.latency.snapshot()}
        for name, replica in self.replica_observers.items():
            out[name] = replica.latency.snapshot()
        return out

    def overall_p95(self) -> float | None:
        """P95 of every query in the window (seconds), or None when there was none."""
        overall = self.latency.overall()
        return None if overall is None else overall.p95

    def p95_over_budget(self) -> bool:
        """True when the overall P95 exceeds ``DB_QUERY_P95_BUDGET_MS``."""
        p95 = self.overall_p95()
        return p95 is not None and p95 * 1000 > self.settings.query_p95_budget_ms

    def prometheus_exposition(self, accept_header: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus exposition of our metrics."""
        return self.exposition.render(accept_header)

    @property
    def dropped_spans(self) -> int:
        """Spans lost because export failed (endpoint down), since start."""
        return self.export.exporter.dropped if self.export.exporter is not None else 0


def _span_base(database: str | None, host: str | None, port: int | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"db.system.name": "postgresql"}
    if database:
        attrs["db.namespace"] = database
    if host:
        attrs["server.address"] = host
        attrs["server.port"] = port or 5432
    return attrs
