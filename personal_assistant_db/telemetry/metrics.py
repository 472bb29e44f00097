"""Semantic-convention database metrics.

Histograms (seconds, semconv buckets): ``db.client.operation.duration`` from the query listener;
``db.client.connection.wait_time`` / ``.use_time`` / ``.create_time`` from the PoolMeter hooks.
Pool state (observable, read at collection time, free per query): ``db.client.connection.count``
{state=idle|used}, ``.max``, ``.idle.max``, ``.pending_requests``, ``.timeouts``.

Why the histograms are aggregated here: one ``Histogram.record()`` in the OpenTelemetry SDK costs
3.5-7 us, and a query feeds three of them (duration, wait, use), about 8 % of a PK lookup's CPU.
``BucketHistogram.record`` is a bisect and three additions (~0.3 us). At collection time
``MetricProducer`` (producer.py) turns the counts into the SDK's own ``Histogram`` metric data,
which the OTel Prometheus exporter (prometheus.py) and any OTel ``MetricExporter`` wrapped with
``ProducingMetricExporter`` export unchanged: same names, units, buckets, cumulative temporality.

Metric attributes stay low-cardinality. With read replicas configured, pool and query series carry
each node's ``server.address``/``server.port`` and ``db.role`` (one series per node): set
``DB_METRICS_REQUIRE_TOKEN`` when server addresses must not be public.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)

if TYPE_CHECKING:
    from ..pool import PoolStats
    from ..replicas.node import Node

__all__ = [
    "DURATION_BUCKETS",
    "BucketHistogram",
    "HistogramSeries",
    "PoolInstruments",
    "duration_histogram",
    "observable_counters",
]

#: Semconv bucket boundaries for db.client.operation.duration, in seconds.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
CARDINALITY_LIMIT = 2000  # attribute sets per histogram, as the SDK's default limit
OVERFLOW_ATTRIBUTES: Mapping[str, Any] = {"otel.metric.overflow": True}
_OVERFLOW_KEY = frozenset(OVERFLOW_ATTRIBUTES.items())
POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
ROLE = "db.role"


class HistogramSeries:
    """Cumulative explicit-bucket counts for one attribute set (OTel bucket rule: lo < v <= hi)."""

    __slots__ = ("attributes", "bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, attributes: Mapping[str, Any], bounds: Sequence[float]) -> None:
        self.attributes = dict(attributes)
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def record(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value


class BucketHistogram:
    """A histogram instrument aggregated in process, exported through ``MetricProducer``."""

    def __init__(
        self,
        name: str,
        description: str,
        unit: str = "s",
        bounds: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.name = name
        self.description = description
        self.unit = unit
        self.bounds = tuple(bounds)
        self._series: dict[frozenset[tuple[str, Any]], HistogramSeries] = {}

    def series(self, attributes: Mapping[str, Any]) -> HistogramSeries:
        """The series for ``attributes``; keep it and call ``.record()`` on the hot path.

        Past ``CARDINALITY_LIMIT`` attribute sets (say, one table per day), new ones share the
        ``otel.metric.overflow=true`` series, as the SDK's own cardinality limit does.
        """
        key = frozenset(attributes.items())
        found = self._series.get(key)
        if found is None:
            if len(self._series) >= CARDINALITY_LIMIT:
                key, attributes = _OVERFLOW_KEY, OVERFLOW_ATTRIBUTES
                found = self._series.get(key)
            if found is None:
                found = self._series[key] = HistogramSeries(attributes, self.bounds)
        return found

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        self.series(attributes).record(value)

    def metric(self, start_ns: int, now_ns: int) -> Metric | None:
        points = [
            HistogramDataPoint(
                attributes=dict(s.attributes),
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns,
                count=s.count,
                sum=s.sum,
                bucket_counts=list(s.counts),
                explicit_bounds=list(s.bounds),
                min=s.min,
                max=s.max,
            )
            for s in list(self._series.values())
            if s.count
        ]
        if not points:
            return None
        data = Histogram(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
        )
        return Metric(name=self.name, description=self.description, unit=self.unit, data=data)


def duration_histogram() -> BucketHistogram:
    return BucketHistogram(
        "db.client.operation.duration", "Duration of database client operations."
    )


Callback = Callable[[CallbackOptions], Iterable[Observation]]


def observable_counters(meter: Meter, counters: Iterable[tuple[str, Callback, str, str]]) -> None:
    """An observable counter on ``meter`` per (name, callback, unit, description)."""
    for name, callback, unit, description in counters:
        meter.create_observable_counter(name, [callback], unit=unit, description=description)


class PoolInstruments:
    """Pool metrics for the nodes it is handed (the primary, then each replica).

    With replicas configured, each node's series carry ``db.role`` (primary | replica) and
    ``server.address``/``server.port``; without, the primary's series have the pool name only.
    ``attach`` hooks the nodes' PoolMeters, ``detach`` unhooks them.
    """

    def __init__(self, nodes: Sequence[Node], pool_name: str, fallbacks: Mapping[str, int]) -> None:
        #: The statement API's fallback counts by reason (read at collection time).
        self._fallbacks = fallbacks
        self.wait_time = BucketHistogram(
            "db.client.connection.wait_time",
            "The time it took to obtain an open connection from the pool.",
        )
        self.use_time = BucketHistogram(
            "db.client.connection.use_time",
            "The time between borrowing a connection and returning it to the pool.",
        )
        self.create_time = BucketHistogram(
            "db.client.connection.create_time", "The time it took to create a new connection."
        )
        many = len(nodes) > 1
        self._nodes: list[tuple[Node, dict[str, Any]]] = []
        self._own_hooks: list[tuple[list[Callable[[float], None]], Callable[[float], None]]] = []
        for node in nodes:
            attrs: dict[str, Any] = {POOL_NAME: pool_name}
            if many:
                attrs.update(
                    {ROLE: node.role, "server.address": node.address, "server.port": node.port}
                )
            self._nodes.append((node, attrs))
            meter = node.meter
            self._own_hooks += [
                (meter.on_wait, self.wait_time.series(attrs).record),
                (meter.on_use, self.use_time.series(attrs).record),
                (meter.on_create, self.create_time.series(attrs).record),
            ]
        self._api_hooks: list[tuple[list[Callable[[float], None]], Callable[[float], None]]] = []
        #: The primary's attributes (series that are not per node: fast-path fallbacks).
        self._attrs = self._nodes[0][1]

    def observe(self, meter: Meter, *, record_histograms: bool = False) -> None:
        """Register the observable pool instruments on ``meter``; with ``record_histograms``
        also record wait/use/create times through its API (a host's MeterProvider)."""
        for name, callback, unit, description in (
            ("count", self._observe_count, "{connection}", "Connections in the state described."),
            ("max", self._observe_max, "{connection}", "The maximum open connections allowed."),
            ("idle.max", self._observe_idle_max, "{connection}", "The maximum idle connections."),
            ("pending_requests", self._observe_pending, "{request}", "Requests waiting."),
        ):
            meter.create_observable_up_down_counter(
                f"db.client.connection.{name}", [callback], unit=unit, description=description
            )
        observable_counters(
            meter,
            (
                (
                    "db.client.connection.timeouts",
                    self._observe_timeouts,
                    "{timeout}",
                    "Timeouts while obtaining a connection from the pool.",
                ),
                (
                    "pa_db.read.retries",
                    self._observe_read_retries,
                    "{retry}",
                    "Reads retried on a fresh connection after a disconnect.",
                ),
                (
                    "pa_db.fast_path.fallbacks",
                    self._observe_fallbacks,
                    "{statement}",
                    "Statement API calls that ran on the SQLAlchemy path, by reason.",
                ),
            ),
        )
        if not record_histograms:
            return
        for ours, which in (
            (self.wait_time, "on_wait"),
            (self.use_time, "on_use"),
            (self.create_time, "on_create"),
        ):
            instrument = meter.create_histogram(
                ours.name,
                unit=ours.unit,
                description=ours.description,
                explicit_bucket_boundaries_advisory=list(ours.bounds),
            )
            for node, attrs in self._nodes:

                def hook(seconds: float, instrument: Any = instrument, attrs: Any = attrs) -> None:
                    instrument.record(seconds, attrs)

                self._api_hooks.append((getattr(node.meter, which), hook))

    @property
    def histograms(self) -> list[BucketHistogram]:
        return [self.wait_time, self.use_time, self.create_time]

    def attach(self) -> None:
        for hooks, hook in self._own_hooks + self._api_hooks:
            if hook not in hooks:
                hooks.append(hook)

    def detach(self) -> None:
        for hooks, hook in self._own_hooks + self._api_hooks:
            while hook in hooks:
                hooks.remove(hook)

    def _started(self) -> list[tuple[Node, dict[str, Any], PoolStats]]:
        return [(n, a, n.pool_stats()) for n, a in self._nodes if n.engine is not None]

    # -- observable callbacks (run at collection time) ---------------------------------------
    def _observe_count(self, options: CallbackOptions) -> Iterable[Observation]:
        out = []
        for _, attrs, stats in self._started():
            out.append(Observation(stats.idle, {**attrs, STATE: "idle"}))
            out.append(Observation(stats.used, {**attrs, STATE: "used"}))
        return out

    def _observe_max(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(stats.capacity, attrs) for _, attrs, stats in self._started()]

    def _observe_idle_max(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(stats.size, attrs) for _, attrs, stats in self._started()]

    def _observe_pending(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(node.meter.waiting, attrs) for node, attrs in self._nodes]

    def _observe_timeouts(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(node.meter.timeouts, attrs) for node, attrs in self._nodes]

    def _observe_read_retries(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(node.meter.read_retries, attrs) for node, attrs in self._nodes]

    def _observe_fallbacks(self, options: CallbackOptions) -> Iterable[Observation]:
        fallbacks = self._fallbacks
        return [Observation(n, {**self._attrs, "reason": r}) for r, n in fallbacks.items()]
